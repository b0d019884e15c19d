//! District and county-level city governments. Each holds the resources every
//! district government keeps (community registers, grid management, information
//! disclosure requests …) plus a few that reflect its own economy.

use super::prelude::*;

pub(super) const CATALOGS: &[super::Catalog] = &[
    ("CCQ", &[DISTRICT_COMMON, CCQ]),
    ("TZQ", &[DISTRICT_COMMON, TZQ]),
    ("HMQ", &[DISTRICT_COMMON, HMQ]),
    ("HAS", &[DISTRICT_COMMON, HAS]),
    ("RGS", &[DISTRICT_COMMON, RGS]),
];

#[rustfmt::skip]
const DISTRICT_COMMON: &[Res] = &[
    Res { title: "村（社区）基本信息", theme: CivilAffairs, share: U, cycle: Yearly, format: Table,
        kw: &["村居", "社区", "基层治理"],
        about: "辖区各镇（街道）所属村（社区）的户数、人口和办公地址",
        fields: &["community_code", "community_name", "town_name", "household_count", "population", "office_address", "duty_phone"],
        vars: &[] },
    Res { title: "网格及网格员信息", theme: GovAffairs, share: C(C_CITY_OPS), cycle: Monthly, format: Table,
        kw: &["网格", "网格员", "基层治理"],
        about: "辖区综合网格划分及专职网格员，用于网格化社会治理事件分派",
        fields: &["grid_code", "grid_name", "town_name", "grid_worker", "worker_phone", "household_count"],
        vars: &[] },
    Res { title: "政府信息公开申请办理信息", theme: GovAffairs, share: C(C_APPROVAL), cycle: Daily, format: Table,
        kw: &["政府信息公开", "依申请公开", "答复"],
        about: "依申请公开政府信息的受理、答复期限和答复类型",
        fields: &["apply_no", "applicant_name", "apply_content", "apply_date", "reply_date", "reply_type"],
        vars: &[AnnualStats] },
    Res { title: "招商引资项目信息", theme: MarketRegulation, share: U, cycle: Monthly, format: Table,
        kw: &["招商引资", "签约项目", "产业项目"],
        about: "辖区签约的招商引资项目及投资方、行业和推进状态",
        fields: &["project_name", "investor_name", "industry_name", "total_investment", "sign_date", "project_status"],
        vars: &[AnnualStats] },
    Res { title: "安全生产网格化巡查记录", theme: WorkSafety, share: C(C_EMERGENCY), cycle: Daily, format: Table,
        kw: &["网格巡查", "安全隐患", "属地监管"],
        about: "网格员对辖区小微企业、九小场所开展安全巡查发现的隐患及整改",
        fields: &["check_no", "unit_name", "grid_code", "check_date", "hazard_desc", "rectify_status"],
        vars: &[MonthlyReport, AnnualStats] },
    Res { title: "村庄规划成果", theme: NaturalResources, share: U, cycle: Irregular, format: File,
        kw: &["村庄规划", "乡村振兴", "规划成果"],
        about: "经批准的村庄规划成果文件",
        fields: &["village_name", "town_name", "plan_name", "approve_date", "file_name"],
        vars: &[] },
];

#[rustfmt::skip]
const CCQ: &[Res] = &[
    Res { title: "濠河风景区游客流量数据", theme: Tourism, share: C(C_CITY_OPS), cycle: Realtime, format: Api,
        kw: &["濠河", "客流", "景区"],
        about: "濠河风景区各出入口的实时游客数量，用于节假日客流疏导",
        fields: &["scenic_name", "stat_time", "visitor_count", "entry_count", "max_capacity"],
        vars: &[] },
    Res { title: "重点商务楼宇信息", theme: MarketRegulation, share: U, cycle: Quarterly, format: Table,
        kw: &["楼宇经济", "商务楼宇", "入驻率"],
        about: "主城区重点商务楼宇的建筑面积、入驻率和税收贡献",
        fields: &["building_name", "address", "building_area", "occupancy_rate", "tax_revenue_10k"],
        vars: &[] },
    Res { title: "城市更新片区项目信息", theme: UrbanRural, share: U, cycle: Monthly, format: Table,
        kw: &["城市更新", "片区改造", "历史街区"],
        about: "老城区更新片区的改造范围、投资和进度",
        fields: &["project_name", "location_desc", "total_investment", "start_date", "progress_desc"],
        vars: &[] },
];

#[rustfmt::skip]
const TZQ: &[Res] = &[
    Res { title: "家纺市场经营户信息", theme: MarketRegulation, share: C(C_APPROVAL), cycle: Monthly, format: Table,
        kw: &["家纺", "专业市场", "经营户"],
        about: "家纺城专业市场内经营户的商铺位置和经营品类",
        fields: &["uscc", "trader_name", "operator_name", "shop_no", "main_product", "biz_address"],
        vars: &[] },
    Res { title: "工业园区入驻企业名录", theme: MarketRegulation, share: U, cycle: Quarterly, format: Table,
        kw: &["工业园区", "入驻企业", "产业集聚"],
        about: "区内各工业园区入驻企业及所属行业",
        fields: &["uscc", "ent_name", "park_name", "industry_name", "land_area_mu"],
        vars: &[] },
];

#[rustfmt::skip]
const HMQ: &[Res] = &[
    Res { title: "叠石桥家纺市场商户信息", theme: MarketRegulation, share: C(C_APPROVAL), cycle: Monthly, format: Table,
        kw: &["叠石桥", "家纺", "市场采购贸易"],
        about: "叠石桥国际家纺城商户的经营品类和市场采购贸易备案情况",
        fields: &["uscc", "trader_name", "operator_name", "shop_no", "main_product", "biz_address"],
        vars: &[] },
    Res { title: "海门山羊养殖户信息", theme: Agriculture, share: C(C_APPROVAL), cycle: Quarterly, format: Table,
        kw: &["海门山羊", "特色养殖", "地理标志"],
        about: "海门山羊养殖户的养殖规模和所在村，用于特色产业扶持和动物防疫",
        fields: &["operator_name", "village_name", "stock_scale", "site_address", "record_date"],
        vars: &[] },
];

#[rustfmt::skip]
const HAS: &[Res] = &[
    Res { title: "蚕桑生产统计", theme: Agriculture, share: U, cycle: Yearly, format: Table,
        kw: &["蚕桑", "茧丝绸", "特色农业"],
        about: "各镇桑园面积和蚕茧产量",
        fields: &["stat_year", "town_name", "mulberry_area_mu", "cocoon_output_ton"],
        vars: &[] },
    Res { title: "商贸物流园入驻企业名录", theme: Transport, share: U, cycle: Quarterly, format: Table,
        kw: &["物流园", "商贸物流", "入驻企业"],
        about: "商贸物流园区入驻的物流和商贸企业",
        fields: &["uscc", "ent_name", "park_name", "industry_name", "land_area_mu"],
        vars: &[] },
];

#[rustfmt::skip]
const RGS: &[Res] = &[
    Res { title: "百岁老人信息", theme: CivilAffairs, share: C(C_WELFARE), cycle: Monthly, format: Table,
        kw: &["长寿之乡", "百岁老人", "长寿津贴"],
        about: "辖区百岁老人及长寿津贴发放，用于长寿文化研究和敬老服务",
        fields: &["id_no", "person_name", "birth_date", "town_name", "subsidy_amount"],
        vars: &[] },
    Res { title: "花木盆景种植户信息", theme: Agriculture, share: U, cycle: Yearly, format: Table,
        kw: &["花木", "盆景", "特色产业"],
        about: "花木盆景种植户的种植面积和主要品种",
        fields: &["operator_name", "village_name", "plant_area_mu", "main_product"],
        vars: &[] },
];
