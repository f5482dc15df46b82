"""The markets test orders are made for: one table per country, so that every order holds together.

Each market says what an order from that country looks like: its locale (``en-GB``, not ``en``), its currency
and the currency's minor unit (ISO 4217: JPY has none, the others two), a realistic price range for each
product category in that currency, real cities with their real region and postcode prefixes, product names
in the market's language, and its banks, carriers and phone numbers. The builder draws people and products
from these tables once per seed (``builder.py``); the property tests check orders against the same tables.

Amounts
-------
Every amount of an order (``price``, ``total_price``, ``goods_total``, ``delivery_cost``, ``custom_fee``,
``amount``) is an integer count of the currency's MINOR unit: 1299 with USD is $12.99, 129900 with RUB is
1 299,00 ₽, 1990 with JPY is ¥1,990 (the yen has no minor unit). A reader shows ``amount / 10 ** minor_unit``
with the currency's own number of decimals (:data:`MINOR_UNITS`; the page does this in ``formatMoney``).
Within an order: ``total_price = price * (100 - sale) // 100`` (rounded down to a whole minor unit),
``goods_total = sum(total_price)`` and ``amount = goods_total + delivery_cost + custom_fee``.

Postcodes
---------
A city lists the prefixes its postcodes begin with (the first digits of a ZIP, PLZ, CAP or индекс, the
outward code in Britain, or a whole code where a city has only a few). The market's ``postcode_shape`` says
what follows: each ``#`` a digit, each ``@`` a letter of the British inward code, any other character itself.
A shape starting with ``*`` puts the whole prefix there (British outward codes differ in length); otherwise
the prefix replaces the shape's leading characters (a DE prefix ``506`` in ``#####`` gives ``506##``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# ISO 4217 minor units of the currencies the markets use: how many decimals an amount has.
MINOR_UNITS: Final = {"USD": 2, "GBP": 2, "EUR": 2, "PLN": 2, "RUB": 2, "JPY": 0}
# Letters of a British inward code (the last two characters): never C, I, K, M, O or V.
GB_INWARD_LETTERS: Final = "ABDEFGHJLNPQRSTUWXYZ"

CategoryName = Literal["clothing", "shoes", "beauty", "accessories"]


@dataclass(frozen=True, slots=True)
class City:
    name: str
    region: str  # the state, county, Land, région, voivodeship, субъект or prefecture it lies in
    postcodes: tuple[str, ...]  # what its postcodes begin with (see the module's docstring)


@dataclass(frozen=True, slots=True)
class Category:
    name: CategoryName
    products: tuple[str, ...]  # in the market's language
    sizes: tuple[str, ...]  # "0" for goods without a size
    low: int  # the price range, in whole units of the currency (the table reads as a shop's shelf)
    high: int


@dataclass(frozen=True, slots=True)
class Market:
    country: str  # ISO 3166-1 alpha-2
    locale: str  # the order's BCP 47 language tag
    faker_locale: str
    currency: str
    phone_prefix: str  # a mobile number: this, then ``phone_digits`` random digits
    phone_digits: int
    postcode_shape: str
    family_name_first: bool  # "Иванов Иван", "山田 太郎"
    people: int  # of the builder's 512 people (the shares add up to 512)
    cities: tuple[City, ...]
    categories: tuple[Category, ...]
    brand_suffixes: tuple[str, ...]
    banks: tuple[str, ...]
    delivery_services: tuple[str, ...]
    delivery_costs: tuple[int, ...]  # 8 choices, minor units (free delivery twice as likely)
    custom_fee_step: int  # a customs fee is 1 to 15 of these, minor units
    # A shop price: rounded down to ``charm_step`` minor units, less ``charm_off`` ($12.99, 1 299 ₽, ¥1,990).
    charm_step: int
    charm_off: int
    # Every list price is a multiple of this many minor units (roubles are priced in whole roubles, yen in tens).
    price_unit: int = 1

    @property
    def minor_unit(self) -> int:
        return MINOR_UNITS[self.currency]

    def price_range(self, category: Category) -> tuple[int, int]:
        """The category's prices in minor units, both ends included."""
        scale = 10**self.minor_unit
        return category.low * scale, category.high * scale


# The market tables below keep their hand alignment (`# fmt: skip`): one city a line and one category a
# block read as the tables they are; the formatter would spread each call over a dozen lines. The only
# formatter markers in the code.
_LETTER_SIZES: Final = ("XS", "S", "M", "L", "XL")
_EU_SHOE_SIZES: Final = ("37", "38", "39", "40", "41", "42", "43", "44")
_NO_SIZE: Final = ("0",)

US: Final = Market(
    country="US", locale="en-US", faker_locale="en_US", currency="USD", phone_prefix="+1", phone_digits=10,
    postcode_shape="#####", family_name_first=False, people=112,
    cities=(
        City("New York", "New York", ("100", "101", "102")),
        City("Los Angeles", "California", ("900",)),
        City("Chicago", "Illinois", ("606",)),
        City("Houston", "Texas", ("770",)),
        City("Phoenix", "Arizona", ("850",)),
        City("Philadelphia", "Pennsylvania", ("191",)),
        City("San Antonio", "Texas", ("782",)),
        City("San Diego", "California", ("921",)),
        City("Dallas", "Texas", ("752",)),
        City("Seattle", "Washington", ("981",)),
        City("Denver", "Colorado", ("802",)),
        City("Boston", "Massachusetts", ("021",)),
        City("Atlanta", "Georgia", ("303",)),
        City("Miami", "Florida", ("331",)),
        City("Portland", "Oregon", ("972",)),
        City("Minneapolis", "Minnesota", ("554",)),
    ),
    categories=(
        Category("clothing", ("Crew Neck T-Shirt", "Pullover Hoodie", "Slim Fit Jeans", "Wrap Dress", "Denim Jacket",
                              "Pleated Midi Skirt", "Cable Knit Sweater", "Chino Pants"), _LETTER_SIZES, 9, 120),
        Category("shoes", ("Running Sneakers", "Chelsea Boots", "Slide Sandals", "Penny Loafers", "Canvas High-Tops"),
                 ("7", "8", "8.5", "9", "9.5", "10", "11", "12"), 25, 250),
        Category("beauty", ("Volumizing Mascara", "Matte Lipstick", "Daily Moisturizer", "Clarifying Shampoo",
                            "Eau de Parfum", "Liquid Eyeliner"), _NO_SIZE, 4, 95),
        Category("accessories", ("Laptop Backpack", "Leather Wallet", "Phone Case", "Wireless Headphones",
                                 "Ceramic Mug", "Spiral Notebook", "LED Desk Lamp"), _NO_SIZE, 5, 180),
    ),
    brand_suffixes=("", "", " & Co", " Studio", " Supply", " Lab", " Goods"),
    banks=("chase", "citi", "wellsfargo", "bofa"),
    delivery_services=("ups", "fedex", "usps"),
    delivery_costs=(0, 0, 499, 599, 799, 999, 1299, 1999),
    custom_fee_step=50, charm_step=100, charm_off=1,
)  # fmt: skip

GB: Final = Market(
    country="GB", locale="en-GB", faker_locale="en_GB", currency="GBP", phone_prefix="+447", phone_digits=9,
    postcode_shape="* #@@", family_name_first=False, people=64,
    cities=(
        City("London", "Greater London", ("EC1A", "EC2A", "WC2H", "N1", "NW1", "E1", "SE1", "SW1A", "SW11", "W1D")),
        City("Manchester", "Greater Manchester", ("M1", "M2", "M4", "M13", "M14", "M20")),
        City("Birmingham", "West Midlands", ("B1", "B2", "B5", "B15", "B29")),
        City("Leeds", "West Yorkshire", ("LS1", "LS2", "LS6", "LS11")),
        City("Liverpool", "Merseyside", ("L1", "L2", "L8", "L17")),
        City("Bristol", "Bristol", ("BS1", "BS2", "BS6", "BS8")),
        City("Sheffield", "South Yorkshire", ("S1", "S2", "S10", "S11")),
        City("Newcastle upon Tyne", "Tyne and Wear", ("NE1", "NE2", "NE4", "NE6")),
        City("Nottingham", "Nottinghamshire", ("NG1", "NG2", "NG7")),
        City("Brighton", "East Sussex", ("BN1", "BN2")),
        City("Oxford", "Oxfordshire", ("OX1", "OX2", "OX4")),
        City("Cambridge", "Cambridgeshire", ("CB1", "CB2", "CB4")),
        City("Edinburgh", "City of Edinburgh", ("EH1", "EH2", "EH3", "EH8")),
        City("Glasgow", "Glasgow City", ("G1", "G2", "G3", "G12")),
        City("Cardiff", "Cardiff", ("CF10", "CF11", "CF24")),
        City("Belfast", "County Antrim", ("BT1", "BT2", "BT12")),
    ),
    categories=(
        Category("clothing", ("Crew Neck T-Shirt", "Hooded Jumper", "Slim Fit Jeans", "Wrap Dress", "Quilted Jacket",
                              "Pleated Midi Skirt", "Cable Knit Jumper", "Chino Trousers"), _LETTER_SIZES, 6, 95),
        Category("shoes", ("Running Trainers", "Chelsea Boots", "Sliders", "Penny Loafers", "Wellington Boots"),
                 ("5", "6", "7", "8", "9", "10", "11"), 20, 200),
        Category("beauty", ("Lengthening Mascara", "Matte Lipstick", "Day Moisturiser", "Clarifying Shampoo",
                            "Eau de Parfum", "Kohl Eyeliner"), _NO_SIZE, 3, 80),
        Category("accessories", ("Rucksack", "Leather Purse", "Phone Case", "Wireless Headphones", "Bone China Mug",
                                 "A5 Notebook", "Desk Lamp"), _NO_SIZE, 4, 150),
    ),
    brand_suffixes=("", "", " & Sons", " of London", " Studio", " Goods"),
    banks=("barclays", "hsbc", "lloyds", "natwest"),
    delivery_services=("royalmail", "dpd", "evri"),
    delivery_costs=(0, 0, 299, 399, 499, 599, 699, 999),
    custom_fee_step=50, charm_step=100, charm_off=1,
)  # fmt: skip

DE: Final = Market(
    country="DE", locale="de-DE", faker_locale="de_DE", currency="EUR", phone_prefix="+4915", phone_digits=9,
    postcode_shape="#####", family_name_first=False, people=80,
    cities=(
        City("Berlin", "Berlin", ("101", "104", "105", "107", "109", "120", "130")),
        City("Hamburg", "Hamburg", ("200", "201", "202", "203", "221", "227")),
        City("München", "Bayern", ("803", "804", "806", "807", "808", "809", "813", "816")),
        City("Nürnberg", "Bayern", ("904",)),
        City("Köln", "Nordrhein-Westfalen", ("506", "507", "509", "510")),
        City("Düsseldorf", "Nordrhein-Westfalen", ("402", "404", "405", "406")),
        City("Frankfurt am Main", "Hessen", ("603", "604", "605")),
        City("Stuttgart", "Baden-Württemberg", ("701", "703", "704", "705")),
        City("Böblingen", "Baden-Württemberg", ("7103",)),
        City("Leipzig", "Sachsen", ("041", "042", "043")),
        City("Dresden", "Sachsen", ("010", "011", "012", "013")),
        City("Hannover", "Niedersachsen", ("301", "304", "305", "306")),
        City("Bremen", "Bremen", ("281", "282", "283")),
        City("Rostock", "Mecklenburg-Vorpommern", ("180", "181")),
        City("Erfurt", "Thüringen", ("990",)),
        City("Mainz", "Rheinland-Pfalz", ("551",)),
        City("Saarbrücken", "Saarland", ("661",)),
        City("Kiel", "Schleswig-Holstein", ("241",)),
        City("Magdeburg", "Sachsen-Anhalt", ("391",)),
        City("Potsdam", "Brandenburg", ("144",)),
    ),
    categories=(
        Category("clothing", ("Rundhals-T-Shirt", "Kapuzenpullover", "Slim-Fit-Jeans", "Wickelkleid", "Steppjacke",
                              "Plisseerock", "Strickpullover", "Chinohose"), _LETTER_SIZES, 8, 110),
        Category("shoes", ("Laufschuhe", "Chelsea-Boots", "Badelatschen", "Slipper", "Gummistiefel"),
                 _EU_SHOE_SIZES, 25, 230),
        Category("beauty", ("Wimperntusche", "Lippenstift matt", "Tagescreme", "Shampoo", "Eau de Parfum",
                            "Eyeliner"), _NO_SIZE, 3, 90),
        Category("accessories", ("Rucksack", "Geldbörse aus Leder", "Handyhülle", "Kabellose Kopfhörer",
                                 "Kaffeebecher", "Notizbuch", "Schreibtischlampe"), _NO_SIZE, 5, 170),
    ),
    brand_suffixes=("", "", " & Söhne", " Mode", " Manufaktur", " Design"),
    banks=("deutsche", "commerz", "ing", "sparkasse"),
    delivery_services=("dhl", "dpd", "hermes"),
    delivery_costs=(0, 0, 395, 449, 495, 590, 690, 990),
    custom_fee_step=50, charm_step=100, charm_off=1,
)  # fmt: skip

FR: Final = Market(
    country="FR", locale="fr-FR", faker_locale="fr_FR", currency="EUR", phone_prefix="+336", phone_digits=8,
    postcode_shape="#####", family_name_first=False, people=64,
    cities=(
        City("Paris", "Île-de-France", tuple(f"750{n:02d}" for n in range(1, 21))),
        City("Marseille", "Provence-Alpes-Côte d'Azur", tuple(f"130{n:02d}" for n in range(1, 17))),
        City("Nice", "Provence-Alpes-Côte d'Azur", ("06000", "06100", "06200", "06300")),
        City("Lyon", "Auvergne-Rhône-Alpes", tuple(f"6900{n}" for n in range(1, 10))),
        City("Toulouse", "Occitanie", ("31000", "31100", "31200", "31300", "31400", "31500")),
        City("Montpellier", "Occitanie", ("34000", "34070", "34080", "34090")),
        City("Nantes", "Pays de la Loire", ("44000", "44100", "44200", "44300")),
        City("Strasbourg", "Grand Est", ("67000", "67100", "67200")),
        City("Reims", "Grand Est", ("51100",)),
        City("Bordeaux", "Nouvelle-Aquitaine", ("33000", "33100", "33200", "33300", "33800")),
        City("Lille", "Hauts-de-France", ("59000", "59160", "59260", "59777", "59800")),
        City("Rennes", "Bretagne", ("35000", "35200", "35700")),
        City("Le Havre", "Normandie", ("76600", "76610", "76620")),
        City("Dijon", "Bourgogne-Franche-Comté", ("21000",)),
        City("Tours", "Centre-Val de Loire", ("37000", "37100", "37200")),
        City("Ajaccio", "Corse", ("20000", "20090")),
    ),
    categories=(
        Category("clothing", ("T-shirt col rond", "Sweat à capuche", "Jean slim", "Robe portefeuille", "Doudoune",
                              "Jupe plissée", "Pull en maille", "Pantalon chino"), _LETTER_SIZES, 8, 110),
        Category("shoes", ("Baskets de running", "Bottines Chelsea", "Claquettes", "Mocassins", "Espadrilles"),
                 _EU_SHOE_SIZES, 25, 230),
        Category("beauty", ("Mascara volume", "Rouge à lèvres mat", "Crème de jour", "Shampooing", "Eau de parfum",
                            "Eye-liner"), _NO_SIZE, 3, 90),
        Category("accessories", ("Sac à dos", "Portefeuille en cuir", "Coque de téléphone", "Casque sans fil",
                                 "Tasse en céramique", "Carnet de notes", "Lampe de bureau"), _NO_SIZE, 5, 170),
    ),
    brand_suffixes=("", "", " & Fils", " Paris", " Atelier", " Maison"),
    banks=("bnp", "socgen", "lcl", "creditagricole"),
    delivery_services=("colissimo", "chronopost", "dpd"),
    delivery_costs=(0, 0, 299, 399, 490, 590, 690, 990),
    custom_fee_step=50, charm_step=100, charm_off=1,
)  # fmt: skip

PL: Final = Market(
    country="PL", locale="pl-PL", faker_locale="pl_PL", currency="PLN", phone_prefix="+485", phone_digits=8,
    postcode_shape="##-###", family_name_first=False, people=48,
    cities=(
        City("Warszawa", "mazowieckie", ("00", "01", "02", "03", "04")),
        City("Kraków", "małopolskie", ("30", "31")),
        City("Łódź", "łódzkie", ("90", "91", "92", "93", "94")),
        City("Wrocław", "dolnośląskie", ("50", "51", "52", "53", "54")),
        City("Poznań", "wielkopolskie", ("60", "61")),
        City("Gdańsk", "pomorskie", ("80",)),
        City("Gdynia", "pomorskie", ("81",)),
        City("Szczecin", "zachodniopomorskie", ("70", "71")),
        City("Bydgoszcz", "kujawsko-pomorskie", ("85",)),
        City("Lublin", "lubelskie", ("20",)),
        City("Katowice", "śląskie", ("40",)),
        City("Białystok", "podlaskie", ("15",)),
        City("Rzeszów", "podkarpackie", ("35",)),
        City("Kielce", "świętokrzyskie", ("25",)),
        City("Olsztyn", "warmińsko-mazurskie", ("10",)),
        City("Opole", "opolskie", ("45",)),
        City("Zielona Góra", "lubuskie", ("65",)),
    ),
    categories=(
        Category("clothing", ("Koszulka z okrągłym dekoltem", "Bluza z kapturem", "Jeansy slim", "Sukienka kopertowa",
                              "Kurtka pikowana", "Spódnica plisowana", "Sweter z warkoczem", "Spodnie chino"),
                 _LETTER_SIZES, 30, 450),
        Category("shoes", ("Buty do biegania", "Sztyblety", "Klapki", "Mokasyny", "Kalosze"), _EU_SHOE_SIZES, 90, 900),
        Category("beauty", ("Tusz do rzęs", "Matowa pomadka", "Krem na dzień", "Szampon", "Woda perfumowana",
                            "Eyeliner"), _NO_SIZE, 10, 350),
        Category("accessories", ("Plecak", "Skórzany portfel", "Etui na telefon", "Słuchawki bezprzewodowe",
                                 "Kubek ceramiczny", "Notes", "Lampka biurkowa"), _NO_SIZE, 15, 650),
    ),
    brand_suffixes=("", "", " i Synowie", " Moda", " Pracownia", " Design"),
    banks=("pkobp", "pekao", "mbank", "santander"),
    delivery_services=("inpost", "dpd", "pocztapolska"),
    delivery_costs=(0, 0, 999, 1299, 1499, 1699, 1999, 2499),
    custom_fee_step=200, charm_step=100, charm_off=1,
)  # fmt: skip

RU: Final = Market(
    country="RU", locale="ru-RU", faker_locale="ru_RU", currency="RUB", phone_prefix="+79", phone_digits=9,
    postcode_shape="######", family_name_first=True, people=96,
    cities=(
        City("Москва", "Москва", ("101", "107", "109", "115", "117", "119", "121", "123", "125", "127", "129")),
        City("Санкт-Петербург", "Санкт-Петербург", ("190", "191", "192", "193", "194", "195", "196", "197", "198")),
        City("Новосибирск", "Новосибирская область", ("630",)),
        City("Екатеринбург", "Свердловская область", ("620",)),
        City("Казань", "Республика Татарстан", ("420",)),
        City("Нижний Новгород", "Нижегородская область", ("603",)),
        City("Челябинск", "Челябинская область", ("454",)),
        City("Самара", "Самарская область", ("443",)),
        City("Омск", "Омская область", ("644",)),
        City("Ростов-на-Дону", "Ростовская область", ("344",)),
        City("Уфа", "Республика Башкортостан", ("450",)),
        City("Красноярск", "Красноярский край", ("660",)),
        City("Пермь", "Пермский край", ("614",)),
        City("Воронеж", "Воронежская область", ("394",)),
        City("Владивосток", "Приморский край", ("690",)),
        City("Чита", "Забайкальский край", ("672",)),
        City("Южно-Сахалинск", "Сахалинская область", ("693",)),
        City("Калининград", "Калининградская область", ("236",)),
    ),
    categories=(
        Category("clothing", ("Футболка с круглым вырезом", "Худи с капюшоном", "Джинсы слим", "Платье на запах",
                              "Стёганая куртка", "Юбка плиссе", "Свитер крупной вязки", "Брюки чинос"),
                 ("42", "44", "46", "48", "50", "52", "54"), 500, 9_000),
        Category("shoes", ("Кроссовки для бега", "Ботинки челси", "Шлёпанцы", "Лоферы", "Резиновые сапоги"),
                 _EU_SHOE_SIZES, 1_500, 20_000),
        Category("beauty", ("Тушь для ресниц", "Матовая помада", "Дневной крем", "Шампунь", "Парфюмерная вода",
                            "Подводка для глаз"), _NO_SIZE, 200, 8_000),
        Category("accessories", ("Рюкзак", "Кожаный кошелёк", "Чехол для телефона", "Беспроводные наушники",
                                 "Керамическая кружка", "Блокнот", "Настольная лампа"), _NO_SIZE, 300, 15_000),
    ),
    brand_suffixes=("", "", " и К°", " Стиль", " Дом", " Мануфактура"),
    banks=("alpha", "sber", "tinkoff", "vtb"),
    delivery_services=("cdek", "boxberry", "pochta"),
    delivery_costs=(0, 0, 9_900, 14_900, 19_900, 24_900, 29_900, 49_900),
    custom_fee_step=5_000, charm_step=10_000, charm_off=100, price_unit=100,
)  # fmt: skip

JP: Final = Market(
    country="JP", locale="ja-JP", faker_locale="ja_JP", currency="JPY", phone_prefix="+8190", phone_digits=8,
    postcode_shape="###-####", family_name_first=True, people=48,
    cities=(
        City("千代田区", "東京都", ("100", "101", "102")),
        City("新宿区", "東京都", ("160", "161", "162", "169")),
        City("渋谷区", "東京都", ("150", "151")),
        City("横浜市", "神奈川県", ("220", "221", "231", "232")),
        City("さいたま市", "埼玉県", ("330", "336", "338")),
        City("千葉市", "千葉県", ("260", "261", "263")),
        City("大阪市", "大阪府", ("530", "540", "541", "542", "543")),
        City("名古屋市", "愛知県", ("450", "460", "461", "464")),
        City("京都市", "京都府", ("600", "602", "604", "606")),
        City("神戸市", "兵庫県", ("650", "651", "657")),
        City("札幌市", "北海道", ("060", "062", "064", "065")),
        City("仙台市", "宮城県", ("980", "981", "982", "983")),
        City("広島市", "広島県", ("730", "732", "733")),
        City("福岡市", "福岡県", ("810", "812", "814")),
        City("金沢市", "石川県", ("920", "921")),
        City("那覇市", "沖縄県", ("900", "902")),
    ),
    categories=(
        Category("clothing", ("クルーネックTシャツ", "プルオーバーパーカー", "スリムジーンズ", "カシュクールワンピース",
                              "ダウンジャケット", "プリーツスカート", "ケーブルニットセーター", "チノパンツ"),
                 ("S", "M", "L", "LL", "3L"), 990, 15_000),
        Category("shoes", ("ランニングシューズ", "サイドゴアブーツ", "サンダル", "ローファー", "レインブーツ"),
                 ("23.0", "23.5", "24.0", "24.5", "25.0", "26.0", "27.0", "28.0"), 2_900, 30_000),
        Category("beauty", ("マスカラ", "マットリップスティック", "保湿クリーム", "シャンプー", "オードパルファム",
                            "アイライナー"), _NO_SIZE, 500, 12_000),
        Category("accessories", ("リュックサック", "革財布", "スマホケース", "ワイヤレスイヤホン", "マグカップ",
                                 "ノート", "デスクライト"), _NO_SIZE, 500, 20_000),
    ),
    brand_suffixes=("", "", " Tokyo", " Studio", " Works"),
    banks=("mufg", "smbc", "mizuho", "resona"),
    delivery_services=("yamato", "sagawa", "japanpost"),
    delivery_costs=(0, 0, 550, 660, 770, 880, 990, 1_100),
    custom_fee_step=100, charm_step=100, charm_off=10, price_unit=10,
)  # fmt: skip

MARKETS: Final = (US, GB, DE, FR, PL, RU, JP)
PEOPLE: Final = sum(market.people for market in MARKETS)  # the builder draws a person with a 9-bit mask
assert PEOPLE == 512
