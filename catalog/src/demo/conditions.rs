//! Share conditions (有条件共享) and legal bases (不予共享) used by the demo tables.
//!
//! Real catalogs reuse a small set of such texts; keeping them in one place keeps the
//! wording consistent and lets a table row name its condition in a few characters.

// Conditions for 有条件共享.
pub(super) const C_APPROVAL: &str = "仅限用于行政审批事项办理，需经本部门审核同意";
pub(super) const C_ENFORCEMENT: &str =
    "仅限用于行政执法和案件办理，需经本部门审核同意，不得向第三方提供";
pub(super) const C_POLICE: &str =
    "仅向具有法定职责的部门提供，用于依法履职范围内的核查比对，使用时须遵守个人信息保护要求";
pub(super) const C_WELFARE: &str = "仅限用于社会救助、社会保障待遇资格核查，按次申请并说明用途";
pub(super) const C_CREDIT: &str = "仅限用于信用监管和联合奖惩，需签订数据使用协议";
pub(super) const C_EMERGENCY: &str = "仅限用于安全生产监管和应急处置，需经本部门分管负责人审批";
pub(super) const C_CITY_OPS: &str = "仅限用于城市运行监测分析，需签订数据安全承诺书，不得对外发布";
pub(super) const C_VERIFY: &str =
    "仅提供核验比对服务，不提供批量数据下载，调用需经本部门审核同意并留痕";
pub(super) const C_MEDICAL: &str =
    "仅限用于医疗保障、公共卫生管理和政务服务办理，需经本部门审核同意";
pub(super) const C_TAX: &str = "仅限用于涉税协查和部门间信息比对，按照税务信息共享协议提供";
pub(super) const C_PLANNING: &str =
    "仅限用于规划编制、项目审批和国土空间监管，需经本部门审核同意，不得转作他用";
pub(super) const C_ENTERPRISE: &str =
    "涉及企业经营信息，仅限用于行业监管和产业政策制定，需经本部门审核同意";
pub(super) const C_STATS: &str =
    "汇总数据仅限用于决策分析，需经本部门审核同意，发布前须与本部门核对口径";
pub(super) const C_HOUSING: &str = "仅限用于住房保障资格审核、公积金业务和不动产交易监管，按次申请";
pub(super) const C_EDUCATION: &str = "仅限用于入学资格审核和教育管理服务，需经本部门审核同意";
pub(super) const C_SOCIAL_GOV: &str = "仅限用于矛盾纠纷排查化解和基层社会治理，需经本部门审核同意";
pub(super) const C_UTILITY: &str =
    "涉及用户用能信息，仅限用于城市运行监测、节能监管和应急保障，需签订数据使用协议";

// Legal bases for 不予共享.
pub(super) const N_PERSONAL: &str =
    "依据《中华人民共和国个人信息保护法》第二十八条，涉及敏感个人信息不予共享";
pub(super) const N_SECRET: &str = "依据《中华人民共和国保守国家秘密法》，涉及国家秘密，不予共享";
pub(super) const N_INVESTIGATION: &str =
    "依据《中华人民共和国刑事诉讼法》和公安工作保密规定，涉及侦查工作秘密，不予共享";
pub(super) const N_TAX: &str =
    "依据《中华人民共和国税收征收管理法》第八条，纳税人涉税信息依法保密，不予共享";
pub(super) const N_MINOR: &str =
    "依据《中华人民共和国未成年人保护法》，涉及未成年人个人信息，不予共享";
pub(super) const N_STATS: &str =
    "依据《中华人民共和国统计法》，统计调查中获得的能够识别单个统计调查对象的资料，不予共享";
pub(super) const N_MEDICAL: &str =
    "依据《医疗机构病历管理规定》和《中华人民共和国个人信息保护法》，患者诊疗信息不予共享";
pub(super) const N_CRITICAL: &str =
    "依据《中华人民共和国数据安全法》和《关键信息基础设施安全保护条例》，涉及重要数据，不予共享";
pub(super) const N_COMMERCIAL: &str =
    "依据《中华人民共和国反不正当竞争法》，涉及商业秘密，不予共享";
pub(super) const N_TRIAL: &str =
    "依据《中华人民共和国人民法院组织法》和审判工作保密规定，涉及审判工作秘密，不予共享";
pub(super) const N_PETITION: &str =
    "依据《信访工作条例》，信访人个人信息及信访事项内容应予保密，不予共享";
