//! Word lists the demo generator draws from. All enterprise and person names are
//! fictitious.

/// A chemical industry park (or county) of Nantong: address prefix, roads, county
/// code (first six digits of USCCs and ID numbers) and the truck checkpoints on the way.
pub(super) struct Park {
    pub prefix: &'static str,
    pub roads: &'static [&'static str],
    pub county: &'static str,
    pub checkpoints: &'static [&'static str],
}

pub(super) const PARKS: [Park; 7] = [
    Park {
        prefix: "南通市如东县洋口化学工业园",
        roads: &[
            "黄海一路",
            "黄海二路",
            "黄海三路",
            "洋口大道",
            "海滨四路",
            "通海大道",
        ],
        county: "320623",
        checkpoints: &["洋口港区疏港公路卡口", "G15沈海高速洋口收费站卡口"],
    },
    Park {
        prefix: "南通市经济技术开发区",
        roads: &[
            "江山路",
            "通旺路",
            "中央路",
            "星湖大道",
            "富民港路",
            "广州路",
        ],
        county: "320691",
        checkpoints: &["开发区通达路卡口", "G40沪陕高速南通东收费站卡口"],
    },
    Park {
        prefix: "南通市海门区临江新区",
        roads: &["滨江大道", "灵甸路", "临江大道", "江海路"],
        county: "320614",
        checkpoints: &["G40沪陕高速海门收费站卡口", "临江新区滨江大道卡口"],
    },
    Park {
        prefix: "南通市启东市吕四港经济开发区精细化工园",
        roads: &["港西大道", "化工一路", "化工三路", "东海路"],
        county: "320681",
        checkpoints: &["吕四港疏港公路卡口", "G40沪陕高速启东收费站卡口"],
    },
    Park {
        prefix: "南通市如皋市港城工业园",
        roads: &["通港路", "长江路", "疏港路", "江安路"],
        county: "320682",
        checkpoints: &["如皋港区长江路卡口", "G15沈海高速如皋收费站卡口"],
    },
    Park {
        prefix: "南通市通州区平潮镇",
        roads: &["通扬路", "新江海河路", "平西路"],
        county: "320612",
        checkpoints: &["S336省道平潮卡口"],
    },
    Park {
        prefix: "南通市海安市经济技术开发区",
        roads: &["东海大道", "长江路", "鑫港路"],
        county: "320685",
        checkpoints: &["G15沈海高速海安收费站卡口"],
    },
];

/// Status of an enterprise in the YJJ list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Normal,
    Suspended,
    Shutdown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Normal => "正常生产",
            Status::Suspended => "停产整顿",
            Status::Shutdown => "责令关停",
        }
    }
}

/// Enterprise name, index into [`PARKS`], status, and the goods class trucks bring.
pub(super) const ENTERPRISES: [(&str, usize, Status, usize); 40] = [
    ("江苏瑞丰精细化工有限公司", 0, Status::Normal, 1),
    ("南通联海化学有限公司", 1, Status::Normal, 1),
    ("如东洋口港华泰化工有限公司", 0, Status::Normal, 5),
    ("南通江海新材料科技有限公司", 1, Status::Normal, 1),
    ("江苏海鸿化学品有限公司", 2, Status::Normal, 4),
    ("南通通盛石化有限公司", 1, Status::Normal, 1),
    ("启东市吕港医药化工有限公司", 3, Status::Normal, 3),
    ("南通宏达助剂有限公司", 5, Status::Normal, 5),
    ("如皋市长江化工有限公司", 4, Status::Normal, 5),
    ("海门市临江涂料有限公司", 2, Status::Normal, 1),
    ("南通金桥化工有限公司", 0, Status::Normal, 2),
    ("江苏东晟新材料有限公司", 4, Status::Normal, 1),
    ("南通恒昌化工有限公司", 0, Status::Shutdown, 1),
    ("南通凯盛化学有限公司", 1, Status::Normal, 4),
    ("南通三友精细化工有限公司", 0, Status::Normal, 3),
    ("如东县祥和农化有限公司", 0, Status::Normal, 4),
    ("江苏润邦生物化工有限公司", 3, Status::Normal, 6),
    ("南通星辰合成材料有限公司", 1, Status::Normal, 2),
    ("南通华力气体有限公司", 1, Status::Normal, 0),
    ("启东市新源化工有限公司", 3, Status::Normal, 5),
    ("南通永泰染料化工有限公司", 2, Status::Normal, 4),
    ("海安明达化工有限公司", 6, Status::Normal, 1),
    ("南通开元树脂有限公司", 5, Status::Normal, 1),
    ("江苏中汇石油化工储运有限公司", 4, Status::Normal, 1),
    ("南通德利溶剂有限公司", 0, Status::Normal, 1),
    ("南通佳和氯碱化工有限公司", 1, Status::Normal, 5),
    ("如皋市鸿运化学有限公司", 4, Status::Normal, 3),
    ("南通大江化学有限公司", 2, Status::Normal, 1),
    ("南通立信新能源材料有限公司", 6, Status::Normal, 6),
    ("江苏海昇药业化工有限公司", 3, Status::Normal, 4),
    ("南通远洋涂料有限公司", 5, Status::Normal, 1),
    ("南通信诚危险品仓储有限公司", 1, Status::Normal, 6),
    ("南通协和橡塑化工有限公司", 4, Status::Normal, 2),
    ("启东市海晶盐化有限公司", 3, Status::Normal, 5),
    ("江苏天合特种气体有限公司", 0, Status::Normal, 0),
    ("南通宝丰化工有限公司", 6, Status::Normal, 3),
    ("海门区兴隆化工有限公司", 2, Status::Suspended, 1),
    ("南通东泰化学品有限公司", 1, Status::Suspended, 4),
    ("如东县长青化工有限公司", 0, Status::Suspended, 5),
    ("南通正和新材料有限公司", 4, Status::Normal, 2),
];

/// 危险货物类别 after GB 6944.
pub(super) const GOODS_CLASSES: [&str; 7] = [
    "第2类 气体",
    "第3类 易燃液体",
    "第4类 易燃固体、易于自燃的物质、遇水放出易燃气体的物质",
    "第5类 氧化性物质和有机过氧化物",
    "第6类 毒性物质和感染性物质",
    "第8类 腐蚀性物质",
    "第9类 杂项危险物质和物品",
];

pub(super) const SURNAMES: [&str; 40] = [
    "陈", "张", "王", "顾", "陆", "徐", "季", "缪", "施", "钱", "朱", "黄", "周", "吴", "李", "刘",
    "杨", "沈", "曹", "蒋", "孙", "胡", "郭", "姚", "邵", "范", "葛", "瞿", "冒", "包", "袁", "丁",
    "严", "花", "保", "赵", "宋", "唐", "许", "邱",
];

pub(super) const GIVEN_NAMES: [&str; 48] = [
    "伟", "芳", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "华",
    "平", "刚", "建华", "建国", "志强", "海燕", "晓东", "国平", "红梅", "卫东", "春花", "玉兰",
    "海军", "小军", "丹", "鹏", "辉", "斌", "宇", "浩", "凯", "俊", "峰", "琳", "婷", "雪", "霞",
    "云", "健", "波", "建军", "美华",
];

pub(super) const PHONE_PREFIXES: [&str; 16] = [
    "139", "138", "137", "136", "135", "150", "151", "152", "158", "159", "182", "187", "188",
    "180", "189", "199",
];

/// Plate letters: the alphabet without I and O.
pub(super) const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Findings of an inspection and the range of the fine, in thousands of yuan.
pub(super) const FINDINGS: [(&str, u32, u32); 9] = [
    ("未发现明显问题", 0, 0),
    ("危险化学品储存场所未设置明显的安全警示标志", 10, 30),
    ("特种作业人员未按规定持证上岗", 20, 50),
    ("重大危险源未实行安全监控，监测数据未接入监管平台", 50, 100),
    ("未建立安全风险分级管控和隐患排查治理台账", 10, 30),
    ("可燃有毒气体检测报警装置未定期检测", 5, 20),
    ("生产安全事故应急预案未按规定组织演练", 5, 10),
    ("储罐区防火堤破损未及时修复", 20, 50),
    ("动火作业未按规定办理作业审批手续", 30, 50),
];

pub(super) const COMMUNITIES: [&str; 12] = [
    "南通市崇川区濠西园",
    "南通市崇川区永兴花苑",
    "南通市崇川区新城桥小区",
    "南通市崇川区虹桥新村",
    "南通市崇川区钟秀花园",
    "南通市通州区金沙镇金霞苑",
    "南通市崇川区秦灶街道秦灶花园",
    "南通市海门区海门街道秀山新村",
    "南通市如东县掘港街道青园小区",
    "南通市如皋市如城街道福寿花苑",
    "南通市启东市汇龙镇东城花园",
    "南通市海安市城东镇长江新村",
];
