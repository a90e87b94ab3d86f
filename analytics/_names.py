"""Word lists for the demo-data generator (`analytics.synth`): Chinese surnames and
given-name characters with their pinyin, province-level regions with their main
cities and division codes, company-name parts, government bodies and survey comments.

Plain data, no logic. Weights are rough shares (surname frequencies, a blend of
population and economic weight for regions); they only need to look plausible.
"""

from __future__ import annotations

#: (surname, pinyin, weight in % of the population, roughly)
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("王", "wang", 7.1), ("李", "li", 7.0), ("张", "zhang", 6.8), ("刘", "liu", 5.4), ("陈", "chen", 4.5),
    ("杨", "yang", 3.1), ("黄", "huang", 2.2), ("赵", "zhao", 2.0), ("吴", "wu", 1.9), ("周", "zhou", 1.9),
    ("徐", "xu", 1.5), ("孙", "sun", 1.5), ("马", "ma", 1.3), ("朱", "zhu", 1.3), ("胡", "hu", 1.2),
    ("郭", "guo", 1.1), ("何", "he", 1.1), ("高", "gao", 1.0), ("林", "lin", 1.0), ("罗", "luo", 0.9),
    ("郑", "zheng", 0.9), ("梁", "liang", 0.8), ("谢", "xie", 0.7), ("宋", "song", 0.6), ("唐", "tang", 0.6),
    ("许", "xu", 0.6), ("韩", "han", 0.6), ("冯", "feng", 0.6), ("邓", "deng", 0.6), ("曹", "cao", 0.5),
    ("彭", "peng", 0.5), ("曾", "zeng", 0.5), ("肖", "xiao", 0.5), ("田", "tian", 0.5), ("董", "dong", 0.5),
    ("袁", "yuan", 0.4), ("潘", "pan", 0.4), ("于", "yu", 0.4), ("蒋", "jiang", 0.4), ("蔡", "cai", 0.4),
    ("余", "yu", 0.4), ("杜", "du", 0.4), ("叶", "ye", 0.4), ("程", "cheng", 0.4), ("苏", "su", 0.3),
    ("魏", "wei", 0.3), ("吕", "lv", 0.3), ("丁", "ding", 0.3), ("任", "ren", 0.3), ("沈", "shen", 0.3),
    ("姚", "yao", 0.3), ("卢", "lu", 0.3), ("姜", "jiang", 0.3), ("崔", "cui", 0.3), ("钟", "zhong", 0.3),
    ("谭", "tan", 0.3), ("陆", "lu", 0.3), ("汪", "wang", 0.3), ("范", "fan", 0.3), ("金", "jin", 0.3),
    ("石", "shi", 0.3), ("廖", "liao", 0.3), ("贾", "jia", 0.3), ("夏", "xia", 0.2), ("韦", "wei", 0.2),
    ("付", "fu", 0.2), ("方", "fang", 0.2), ("白", "bai", 0.2), ("邹", "zou", 0.2), ("孟", "meng", 0.2),
    ("熊", "xiong", 0.2), ("秦", "qin", 0.2), ("邱", "qiu", 0.2), ("江", "jiang", 0.2), ("尹", "yin", 0.2),
    ("薛", "xue", 0.2), ("闫", "yan", 0.2), ("段", "duan", 0.2), ("雷", "lei", 0.2), ("侯", "hou", 0.2),
    ("龙", "long", 0.2), ("史", "shi", 0.2), ("陶", "tao", 0.2), ("黎", "li", 0.2), ("贺", "he", 0.2),
    ("顾", "gu", 0.2), ("毛", "mao", 0.2), ("郝", "hao", 0.2), ("龚", "gong", 0.2), ("邵", "shao", 0.2),
    ("万", "wan", 0.2), ("钱", "qian", 0.2), ("严", "yan", 0.2), ("覃", "qin", 0.2), ("武", "wu", 0.2),
    ("戴", "dai", 0.2), ("莫", "mo", 0.2), ("孔", "kong", 0.2), ("向", "xiang", 0.2), ("汤", "tang", 0.2),
    ("欧阳", "ouyang", 0.05), ("司马", "sima", 0.02), ("诸葛", "zhuge", 0.01), ("上官", "shangguan", 0.01),
)  # fmt: skip

#: (character, pinyin) used for given names (one or two characters)
GIVEN_CHARS: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("玉", "yu"), ("兰", "lan"), ("文", "wen"), ("辉", "hui"),
    ("建", "jian"), ("国", "guo"), ("志", "zhi"), ("红", "hong"), ("梅", "mei"), ("鹏", "peng"), ("飞", "fei"),
    ("鑫", "xin"), ("宇", "yu"), ("浩", "hao"), ("然", "ran"), ("子", "zi"), ("涵", "han"), ("欣", "xin"),
    ("怡", "yi"), ("梓", "zi"), ("轩", "xuan"), ("博", "bo"), ("雨", "yu"), ("萱", "xuan"), ("晨", "chen"),
    ("思", "si"), ("佳", "jia"), ("琪", "qi"), ("俊", "jun"), ("嘉", "jia"), ("诗", "shi"), ("婷", "ting"),
    ("雪", "xue"), ("海", "hai"), ("波", "bo"), ("斌", "bin"), ("宁", "ning"), ("凯", "kai"), ("健", "jian"),
    ("琳", "lin"), ("晶", "jing"), ("颖", "ying"), ("倩", "qian"), ("婧", "jing"), ("慧", "hui"), ("莉", "li"),
    ("燕", "yan"), ("春", "chun"), ("林", "lin"), ("峰", "feng"), ("成", "cheng"), ("东", "dong"),
    ("亮", "liang"), ("龙", "long"), ("晓", "xiao"), ("一", "yi"), ("天", "tian"), ("泽", "ze"), ("睿", "rui"),
    ("昊", "hao"), ("铭", "ming"), ("瑶", "yao"), ("欢", "huan"), ("丹", "dan"), ("璐", "lu"), ("蕾", "lei"),
    ("楠", "nan"), ("阳", "yang"), ("帅", "shuai"), ("旭", "xu"), ("彬", "bin"), ("立", "li"), ("新", "xin"),
    ("永", "yong"), ("德", "de"), ("荣", "rong"), ("振", "zhen"), ("安", "an"), ("家", "jia"), ("佩", "pei"),
    ("雅", "ya"), ("晴", "qing"), ("悦", "yue"), ("航", "hang"), ("哲", "zhe"), ("宏", "hong"), ("云", "yun"),
)  # fmt: skip

#: (region, weight, ((city, 4-digit division code), ...)); the region is what the
#: customer file carries, the city prefixes company and government names.
REGIONS: tuple[tuple[str, float, tuple[tuple[str, str], ...]], ...] = (
    ("北京市", 5.0, (("北京", "1101"),)),
    ("天津市", 2.0, (("天津", "1201"),)),
    ("河北省", 4.0, (("石家庄", "1301"), ("唐山", "1302"), ("保定", "1306"))),
    ("山西省", 1.8, (("太原", "1401"), ("大同", "1402"))),
    ("内蒙古自治区", 1.3, (("呼和浩特", "1501"), ("包头", "1502"))),
    ("辽宁省", 2.6, (("沈阳", "2101"), ("大连", "2102"))),
    ("吉林省", 1.2, (("长春", "2201"), ("吉林", "2202"))),
    ("黑龙江省", 1.4, (("哈尔滨", "2301"), ("大庆", "2306"))),
    ("上海市", 5.5, (("上海", "3101"),)),
    ("江苏省", 8.0, (("南京", "3201"), ("无锡", "3202"), ("苏州", "3205"))),
    ("浙江省", 7.0, (("杭州", "3301"), ("宁波", "3302"), ("温州", "3303"))),
    ("安徽省", 3.3, (("合肥", "3401"), ("芜湖", "3402"))),
    ("福建省", 3.6, (("福州", "3501"), ("厦门", "3502"), ("泉州", "3505"))),
    ("江西省", 2.2, (("南昌", "3601"), ("赣州", "3607"))),
    ("山东省", 6.5, (("济南", "3701"), ("青岛", "3702"), ("烟台", "3706"))),
    ("河南省", 4.8, (("郑州", "4101"), ("洛阳", "4103"))),
    ("湖北省", 3.9, (("武汉", "4201"), ("宜昌", "4205"))),
    ("湖南省", 3.6, (("长沙", "4301"), ("株洲", "4302"))),
    ("广东省", 11.0, (("广州", "4401"), ("深圳", "4403"), ("佛山", "4406"), ("东莞", "4419"))),
    ("广西壮族自治区", 2.0, (("南宁", "4501"), ("柳州", "4502"))),
    ("海南省", 0.6, (("海口", "4601"), ("三亚", "4602"))),
    ("重庆市", 2.6, (("重庆", "5001"),)),
    ("四川省", 4.6, (("成都", "5101"), ("绵阳", "5107"))),
    ("贵州省", 1.6, (("贵阳", "5201"), ("遵义", "5203"))),
    ("云南省", 2.0, (("昆明", "5301"), ("大理", "5329"))),
    ("西藏自治区", 0.2, (("拉萨", "5401"),)),
    ("陕西省", 2.6, (("西安", "6101"), ("宝鸡", "6103"))),
    ("甘肃省", 0.9, (("兰州", "6201"),)),
    ("青海省", 0.3, (("西宁", "6301"),)),
    ("宁夏回族自治区", 0.4, (("银川", "6401"),)),
    ("新疆维吾尔自治区", 1.3, (("乌鲁木齐", "6501"),)),
)

#: (character, pinyin) for brand names of companies (two characters each)
BRAND_CHARS: tuple[tuple[str, str], ...] = (
    ("华", "hua"), ("信", "xin"), ("达", "da"), ("通", "tong"), ("泰", "tai"), ("恒", "heng"), ("盛", "sheng"),
    ("源", "yuan"), ("鑫", "xin"), ("宏", "hong"), ("安", "an"), ("嘉", "jia"), ("联", "lian"),
    ("创", "chuang"), ("新", "xin"), ("中", "zhong"), ("天", "tian"), ("瑞", "rui"), ("德", "de"), ("凯", "kai"),
    ("博", "bo"), ("汇", "hui"), ("海", "hai"), ("金", "jin"), ("龙", "long"), ("明", "ming"), ("康", "kang"),
    ("正", "zheng"), ("永", "yong"), ("兴", "xing"), ("远", "yuan"), ("力", "li"), ("美", "mei"), ("宇", "yu"),
    ("辰", "chen"), ("星", "xing"), ("晟", "sheng"), ("锦", "jin"), ("航", "hang"), ("峰", "feng"),
    ("佳", "jia"), ("诚", "cheng"), ("润", "run"), ("腾", "teng"), ("智", "zhi"), ("云", "yun"),
    ("众", "zhong"), ("合", "he"), ("益", "yi"), ("富", "fu"), ("和", "he"), ("元", "yuan"), ("晶", "jing"),
    ("拓", "tuo"), ("捷", "jie"), ("科", "ke"), ("立", "li"), ("亿", "yi"), ("百", "bai"), ("万", "wan"),
)  # fmt: skip

#: industry code -> (word used in company names, weight among enterprises)
INDUSTRIES: dict[str, tuple[str, float]] = {
    "manufacturing": ("机械制造", 0.20),
    "wholesale": ("贸易", 0.18),
    "retail": ("商业", 0.10),
    "it": ("网络科技", 0.14),
    "construction": ("建设工程", 0.08),
    "logistics": ("物流", 0.07),
    "finance": ("投资管理", 0.04),
    "healthcare": ("医疗器械", 0.05),
    "education": ("教育科技", 0.04),
    "hospitality": ("餐饮管理", 0.04),
    "energy": ("新能源", 0.03),
    "agriculture": ("农业发展", 0.02),
    "professional_services": ("企业管理咨询", 0.01),
}

#: legal-form suffixes of enterprises with weights
ENTERPRISE_SUFFIXES: tuple[tuple[str, float], ...] = (
    ("有限公司", 0.75),
    ("股份有限公司", 0.2),
    ("集团有限公司", 0.05),
)

#: partner (reseller) name middles
PARTNER_WORDS: tuple[str, ...] = ("商贸", "供应链管理", "经销", "电子商务", "贸易")

#: government bodies: (name after "<city>市", industry code)
GOVERNMENT_BODIES: tuple[tuple[str, str], ...] = (
    ("教育局", "education"), ("卫生健康委员会", "healthcare"), ("交通运输局", "public_administration"),
    ("市场监督管理局", "public_administration"), ("生态环境局", "public_administration"),
    ("财政局", "public_administration"), ("人力资源和社会保障局", "public_administration"),
    ("住房和城乡建设局", "public_administration"), ("农业农村局", "public_administration"),
    ("文化和旅游局", "public_administration"), ("民政局", "public_administration"),
    ("水务局", "public_administration"), ("统计局", "public_administration"),
    ("应急管理局", "public_administration"), ("商务局", "public_administration"),
    ("科学技术局", "public_administration"), ("工业和信息化局", "public_administration"),
    ("第一人民医院", "healthcare"), ("第一中学", "education"), ("图书馆", "public_administration"),
)  # fmt: skip

#: roles used in organisations' e-mail addresses
ORG_MAIL_ROLES: tuple[str, ...] = ("info", "sales", "purchase", "finance", "contact", "admin", "office")

#: e-mail domains of individuals with weights ("qq.com" addresses are numeric)
MAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("qq.com", 0.30), ("163.com", 0.25), ("126.com", 0.10), ("sina.com", 0.06), ("foxmail.com", 0.06),
    ("outlook.com", 0.08), ("gmail.com", 0.05), ("139.com", 0.05), ("yeah.net", 0.05),
)  # fmt: skip

#: first three digits of mainland mobile numbers
MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "170", "173", "176", "177", "178", "180", "181", "182", "183", "184",
    "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip

#: survey comments by tone; the plain ones need no CSV quoting
COMMENTS_POSITIVE: tuple[str, ...] = (
    "送货很快，包装完好。", "质量不错，会回购。", "客服态度很好，解答耐心。", "性价比高，已经推荐给朋友了。",
    "产品和描述一致，很满意。", "售后处理及时，点赞。", "用了半年，没有出过问题。", "门店店员很专业。",
)  # fmt: skip
COMMENTS_NEUTRAL: tuple[str, ...] = (
    "还可以吧。", "希望多一些优惠活动。", "整体一般，没有特别的感受。", "价格能再便宜点就好了。",
    "希望增加更多颜色可选。", "APP 有时候有点卡。",
)  # fmt: skip
COMMENTS_NEGATIVE: tuple[str, ...] = (
    "物流太慢了，等了一个星期。", "售后响应慢，问题一直没解决。", "商品有瑕疵，退货流程太复杂。",
    "价格偏高，不如别家划算。", "电话一直打不通。", "发票开错了两次。",
)  # fmt: skip
#: legitimate comments that need CSV quoting: an ASCII comma, a double quote, a newline
COMMENTS_SPECIAL: tuple[str, ...] = (
    "送货快, 但是包装破损了",
    '客服说"马上处理"，结果等了三天',
    "建议：\n1. 加快物流\n2. 改进售后",
    "产品很好,\n就是价格贵了点",
    'The "premium" plan is not worth it, sorry',
    '型号 "X-200", 颜色: 黑',
)

#: relative activity per hour of the day (0-23), local time; orders and contacts
#: cluster around late morning and evening.
HOURLY_WEIGHTS: tuple[float, ...] = (
    0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 4.0, 5.5, 6.0,
    5.5, 5.0, 5.2, 5.5, 5.6, 5.2, 5.0, 6.0, 7.0, 7.0, 5.0, 2.0,
)  # fmt: skip

#: product categories: (code, low price CNY, high price CNY)
CATEGORIES: tuple[tuple[str, float, float], ...] = (
    ("groceries", 5, 300), ("personal_care", 10, 600), ("books", 10, 400), ("toys", 20, 2000),
    ("apparel", 30, 3000), ("beauty", 30, 4000), ("home", 20, 8000), ("sports", 30, 10000),
    ("office", 5, 20000), ("appliances", 200, 30000), ("electronics", 100, 60000),
    ("industrial", 300, 80000),
)  # fmt: skip
