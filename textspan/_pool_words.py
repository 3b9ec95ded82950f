"""Word lists behind the built-in description pool in `textspan.pools`.

Any change here changes the generated pool, so it must bump `GENERAL_POOL_VERSION` in `textspan.pools`.
"""

# Colours and palettes.

COLORS = (
    "red", "crimson", "scarlet", "maroon", "burgundy", "orange", "amber", "yellow",
    "gold", "lime green", "olive green", "emerald green", "forest green", "mint green", "teal", "turquoise",
    "cyan", "sky blue", "navy blue", "cobalt blue", "royal blue", "indigo", "violet", "purple",
    "lavender", "magenta", "pink", "hot pink", "salmon", "peach", "beige", "tan",
    "brown", "chocolate brown", "black", "white", "gray", "charcoal gray", "silver", "ivory",
)

COLORED_OBJECTS = (
    "car", "umbrella", "door", "balloon", "bicycle", "dress", "scarf", "sofa",
    "mug", "kite", "rose", "truck", "coat", "backpack", "chair", "boat",
    "bus", "hat", "armchair", "tractor", "envelope", "apple", "feather", "teapot",
)

PALETTES = (
    "warm orange", "cool blue", "muted earth-tone", "soft pastel", "monochrome", "neon",
    "sepia", "black-and-white", "vibrant rainbow", "desaturated gray", "autumnal red and gold",
    "icy blue and white", "candy pink", "lush tropical green", "sunset orange and purple",
    "dark and moody", "high-contrast", "earthy brown", "golden yellow", "teal and orange",
    "deep ocean blue", "forest green and brown", "dusty rose", "electric purple",
    "muted olive", "bright primary", "faded vintage", "cream and white",
)

# Shapes, textures, patterns and materials.

SHAPES = (
    "circle", "square", "triangle", "rectangle", "oval", "hexagon", "pentagon", "octagon",
    "star", "heart", "diamond", "crescent", "spiral", "cross", "arrow", "cube",
    "sphere", "cylinder", "cone", "pyramid", "zigzag", "ring", "arch", "trapezoid",
)

SHAPE_COLORS = ("red", "blue", "yellow", "green", "black", "orange", "purple")

TEXTURES = (
    "rough", "smooth", "bumpy", "fuzzy", "furry", "glossy", "matte", "grainy",
    "cracked", "wrinkled", "rusty", "scaly", "silky", "velvety", "spiky", "porous",
    "crumpled", "woven", "knitted", "polished", "weathered", "peeling", "mossy", "sandy",
    "frosted", "rippled", "pitted", "corrugated", "quilted", "feathery", "slimy", "gritty",
    "leathery", "shiny", "dusty",
)

PATTERNS = (
    "striped", "polka-dot", "checkered", "plaid", "tartan", "paisley", "herringbone", "houndstooth",
    "floral", "geometric", "chevron", "honeycomb", "argyle", "camouflage", "leopard-print", "zebra-stripe",
    "marbled", "tie-dye", "damask", "pinstripe", "mosaic", "lattice", "fractal", "concentric circle",
    "wavy line", "gingham", "brick", "diagonal stripe", "starburst", "scale",
)

PATTERN_COLORS = ("black and white", "red and white", "blue and yellow", "green and gold", "pink and gray")

MATERIALS = (
    "wood", "oak", "marble", "granite", "glass", "steel", "copper", "brass",
    "gold", "silver", "aluminum", "concrete", "brick", "clay", "ceramic", "porcelain",
    "leather", "wool", "cotton", "silk", "linen", "denim", "velvet", "paper",
    "cardboard", "plastic", "rubber", "bamboo", "wicker", "cork", "stone", "sandstone",
    "slate", "ice", "wax", "bronze", "iron", "terracotta", "felt", "resin",
)

# Places: countries, cities, landscapes, indoor and outdoor places.

COUNTRIES = (
    "Argentina", "Australia", "Austria", "Bangladesh", "Belgium", "Bolivia", "Brazil", "Cambodia",
    "Canada", "Chile", "China", "Colombia", "Costa Rica", "Croatia", "Cuba", "the Czech Republic",
    "Denmark", "Ecuador", "Egypt", "Ethiopia", "Finland", "France", "Germany", "Ghana",
    "Greece", "Guatemala", "Hungary", "Iceland", "India", "Indonesia", "Iran", "Ireland",
    "Italy", "Jamaica", "Japan", "Jordan", "Kenya", "Laos", "Lebanon", "Madagascar",
    "Malaysia", "Mexico", "Mongolia", "Morocco", "Nepal", "the Netherlands", "New Zealand", "Nigeria",
    "Norway", "Pakistan", "Peru", "the Philippines", "Poland", "Portugal", "Romania", "Russia",
    "Saudi Arabia", "Senegal", "Singapore", "South Africa", "South Korea", "Spain", "Sri Lanka", "Sweden",
    "Switzerland", "Tanzania", "Thailand", "Tunisia", "Turkey", "Ukraine", "the United Arab Emirates",
    "the United Kingdom", "the United States", "Uruguay", "Vietnam", "Zimbabwe",
)

# (city, country or state) pairs. US cities name their state, UK cities their nation.
CITIES = (
    ("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Madrid", "Spain"), ("Barcelona", "Spain"),
    ("Seville", "Spain"), ("Paris", "France"), ("Marseille", "France"), ("Lyon", "France"),
    ("Rome", "Italy"), ("Venice", "Italy"), ("Florence", "Italy"), ("Naples", "Italy"),
    ("Berlin", "Germany"), ("Munich", "Germany"), ("Hamburg", "Germany"), ("Amsterdam", "the Netherlands"),
    ("Brussels", "Belgium"), ("Vienna", "Austria"), ("Zurich", "Switzerland"), ("Prague", "the Czech Republic"),
    ("Budapest", "Hungary"), ("Warsaw", "Poland"), ("Krakow", "Poland"), ("Copenhagen", "Denmark"),
    ("Stockholm", "Sweden"), ("Oslo", "Norway"), ("Helsinki", "Finland"), ("Reykjavik", "Iceland"),
    ("Dublin", "Ireland"), ("London", "England"), ("Edinburgh", "Scotland"), ("Athens", "Greece"),
    ("Istanbul", "Turkey"), ("Dubrovnik", "Croatia"), ("Bucharest", "Romania"), ("Kyiv", "Ukraine"),
    ("Moscow", "Russia"), ("Saint Petersburg", "Russia"), ("Cairo", "Egypt"), ("Marrakech", "Morocco"),
    ("Tunis", "Tunisia"), ("Lagos", "Nigeria"), ("Accra", "Ghana"), ("Dakar", "Senegal"),
    ("Nairobi", "Kenya"), ("Addis Ababa", "Ethiopia"), ("Dar es Salaam", "Tanzania"), ("Cape Town", "South Africa"),
    ("Johannesburg", "South Africa"), ("Dubai", "the United Arab Emirates"), ("Amman", "Jordan"),
    ("Beirut", "Lebanon"), ("Tehran", "Iran"), ("Mumbai", "India"), ("New Delhi", "India"), ("Jaipur", "India"),
    ("Varanasi", "India"), ("Kolkata", "India"), ("Kathmandu", "Nepal"), ("Colombo", "Sri Lanka"),
    ("Dhaka", "Bangladesh"), ("Karachi", "Pakistan"), ("Bangkok", "Thailand"), ("Chiang Mai", "Thailand"),
    ("Hanoi", "Vietnam"), ("Ho Chi Minh City", "Vietnam"), ("Phnom Penh", "Cambodia"),
    ("Kuala Lumpur", "Malaysia"), ("Jakarta", "Indonesia"), ("Denpasar", "Indonesia"),
    ("Manila", "the Philippines"), ("Beijing", "China"), ("Shanghai", "China"), ("Xi'an", "China"),
    ("Seoul", "South Korea"), ("Busan", "South Korea"), ("Tokyo", "Japan"), ("Kyoto", "Japan"),
    ("Osaka", "Japan"), ("Ulaanbaatar", "Mongolia"), ("Sydney", "Australia"), ("Melbourne", "Australia"),
    ("Auckland", "New Zealand"), ("Wellington", "New Zealand"), ("New York City", "New York"),
    ("Los Angeles", "California"), ("San Francisco", "California"), ("Chicago", "Illinois"),
    ("Miami", "Florida"), ("New Orleans", "Louisiana"), ("Seattle", "Washington"), ("Boston", "Massachusetts"),
    ("Austin", "Texas"), ("Las Vegas", "Nevada"), ("Honolulu", "Hawaii"), ("Toronto", "Canada"),
    ("Vancouver", "Canada"), ("Montreal", "Canada"), ("Quebec City", "Canada"), ("Mexico City", "Mexico"),
    ("Oaxaca", "Mexico"), ("Havana", "Cuba"), ("Kingston", "Jamaica"), ("San José", "Costa Rica"),
    ("Bogotá", "Colombia"), ("Cartagena", "Colombia"), ("Quito", "Ecuador"), ("Lima", "Peru"),
    ("Cusco", "Peru"), ("La Paz", "Bolivia"), ("Santiago", "Chile"), ("Valparaíso", "Chile"),
    ("Buenos Aires", "Argentina"), ("Montevideo", "Uruguay"), ("Rio de Janeiro", "Brazil"),
    ("São Paulo", "Brazil"), ("Salvador", "Brazil"),
)

LANDSCAPES = (
    "mountain range", "desert", "sand dune", "glacier", "rainforest", "pine forest", "bamboo forest",
    "savanna", "tundra", "canyon", "waterfall", "lake", "river", "beach", "coral reef", "volcano",
    "valley", "meadow", "prairie", "swamp", "marsh", "cliff", "cave", "island", "lagoon", "fjord",
    "hot spring", "rice terrace", "vineyard", "wheat field", "sunflower field", "lavender field",
    "rocky coastline", "salt flat", "badlands", "oasis", "range of rolling hills", "bay", "river delta",
    "gorge", "plateau", "geyser", "mangrove forest", "birch forest", "alpine lake", "tidal pool",
    "snowfield", "olive grove", "orchard", "ice cave",
)

# Hand-written scene captions, kept as whole sentences.
SCENES = (
    "Wet cobblestones in the rain",
    "A busy night market with food stalls",
    "A quiet country road lined with trees",
    "A crowded subway platform at rush hour",
    "A narrow alley with laundry hanging overhead",
    "A fishing village on a rocky coast",
    "A traffic jam on a city highway",
    "An abandoned factory with broken windows",
    "A campfire surrounded by tents",
    "A picnic blanket on green grass",
    "A snowy mountain cabin with smoke rising from the chimney",
    "A harbor full of fishing boats",
    "A desert road stretching to the horizon",
    "A flooded street after a storm",
    "A field of wildflowers",
    "Footprints in fresh snow",
    "Waves crashing against a rocky shore",
    "A city skyline reflected in a river",
    "A cluttered desk covered in papers",
    "A kitchen counter with fresh vegetables",
    "An empty swimming pool with cracked tiles",
    "A train crossing a stone bridge",
    "A lighthouse on a cliff above the sea",
    "A row of colorful houses along a canal",
    "A wooden pier stretching into a calm lake",
    "A graveyard with old tombstones",
    "Paper lanterns hanging over a festival street",
    "A ruined castle on a hill",
    "Steam rising from a hot spring",
    "A dirt path through a dense forest",
    "A suburban street with identical houses",
    "A rice paddy with workers in the distance",
    "Fallen leaves on a park bench",
    "A frozen lake with people skating",
    "A beach covered in seashells",
    "A messy teenager's bedroom",
    "A candlelit dinner table",
    "A sandcastle on the beach",
    "A windmill in a flat green field",
    "A herd of cattle crossing a road",
    "A city street full of neon signs",
    "Cars parked along a tree-lined avenue",
    "A rusty car abandoned in a field",
    "Power lines against a gray sky",
    "A vegetable garden with raised beds",
    "A stone bridge over a mountain stream",
    "A tropical beach with palm trees",
    "A pile of firewood next to a barn",
    "Rows of books on library shelves",
    "A playground covered in snow",
    "Laundry drying on a balcony",
    "A bowl of steaming noodles on a table",
    "Graffiti on a brick wall",
    "Puddles reflecting streetlights",
    "A market stall piled with fruit",
    "Sailboats on a calm blue sea",
    "A foggy harbor in the early morning",
    "A dusty road through a small village",
    "A cozy living room with a fireplace",
    "Scattered toys on a nursery floor",
    "A long line of people waiting outside a shop",
    "A deserted beach under gray clouds",
    "A parade moving down a main street",
    "A cable car above a mountain valley",
    "A waterfall hidden in a jungle",
    "A terraced hillside covered in tea plants",
    "Broken glass on a sidewalk",
    "A tiled roof covered in moss",
    "A bicycle leaning against a fence",
    "An overgrown garden behind an old house",
    "A spiral staircase in an old tower",
    "A crowded ferry crossing a river",
    "Fireworks over a city at night",
    "A mountain lake reflecting snowy peaks",
    "Cracked earth in a dry riverbed",
    "A lone tree on a hill",
    "Icebergs floating in dark water",
    "A farmers market on a town square",
    "Rows of tents at a music festival",
    "A construction crane above unfinished buildings",
)

INDOOR_PLACES = (
    "kitchen", "living room", "bedroom", "bathroom", "library", "classroom", "office", "hospital room",
    "gym", "restaurant", "cafe", "bar", "supermarket", "museum", "art gallery", "church",
    "mosque", "temple", "theater", "cinema", "concert hall", "train station", "airport terminal", "subway car",
    "laboratory", "factory", "warehouse", "garage", "attic", "basement", "hotel lobby", "shopping mall",
    "bakery", "bookstore", "barbershop", "hair salon", "laundromat", "courtroom", "indoor swimming pool",
    "greenhouse", "dentist's office", "server room", "recording studio", "dance studio", "prison cell",
    "hallway", "conference room", "nursery",
)

OUTDOOR_PLACES = (
    "parking lot", "playground", "city park", "botanical garden", "farm", "harbor", "marina",
    "construction site", "highway", "bridge", "railway track", "bus stop", "gas station", "stadium",
    "soccer field", "tennis court", "basketball court", "golf course", "campsite", "cemetery", "town square",
    "outdoor market", "rooftop terrace", "backyard", "front porch", "alley", "street corner", "ski slope",
    "pier", "boardwalk", "zoo", "amusement park", "beach promenade", "skate park", "village green",
    "school yard", "train platform", "canal towpath", "picnic area", "outdoor cafe terrace",
)

# Counts of subjects.

NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

COUNTED_SUBJECTS = (
    "dog", "cat", "bird", "horse", "cow", "sheep", "apple", "car",
    "child", "person", "chair", "book", "balloon", "candle", "tree", "boat",
    "flower", "coin", "cup", "egg", "duck", "bicycle", "banana", "mouse",
)

CROWDS = (
    "A crowd of people",
    "A crowd of people in a city square",
    "A crowd of fans at a stadium",
    "A crowd of protesters holding signs",
    "A crowd of shoppers in a mall",
    "A crowd of tourists at a landmark",
    "A crowd of commuters at a train station",
    "A crowd of people at a concert",
    "A crowd of children in a schoolyard",
    "A large flock of birds in the sky",
    "A large herd of sheep on a hillside",
    "A huge school of fish",
)

# Letters and numbers. Each letter template must contain the phrase "letter X" so that the letter
# itself is never read as an article.

LETTER_TEMPLATES = (
    "A photo with the letter {upper}",
    "The letter {upper} written in chalk",
    "The lowercase letter {lower} in a serif font",
    "A neon sign shaped like the letter {upper}",
    "The letter {upper} painted on a wall",
    "A wooden toy block with the letter {upper}",
)

DIGIT_TEMPLATES = (
    "The digit {digit} painted on a door",
    "The number {digit} on a sports jersey",
    "The digit {digit} on a digital clock display",
    "A handwritten digit {digit}",
    "The digit {digit} on a license plate",
)

# Animals and objects.

ANIMALS = (
    "dog", "cat", "tabby cat", "Siamese cat", "black cat", "kitten", "puppy", "golden retriever",
    "German shepherd", "dachshund", "poodle", "husky", "bulldog", "Dalmatian", "horse", "pony",
    "donkey", "cow", "pig", "sheep", "goat", "chicken", "rooster", "duck",
    "goose", "turkey", "rabbit", "hamster", "guinea pig", "mouse", "rat", "squirrel",
    "hedgehog", "fox", "wolf", "bear", "polar bear", "panda", "koala", "kangaroo",
    "lion", "tiger", "leopard", "cheetah", "elephant", "giraffe", "zebra", "rhinoceros",
    "hippopotamus", "camel", "gorilla", "chimpanzee", "orangutan", "deer", "moose", "bison",
    "raccoon", "otter", "beaver", "bat", "owl", "eagle", "hawk", "parrot",
    "penguin", "flamingo", "peacock", "swan", "pigeon", "sparrow", "hummingbird", "crow",
    "seagull", "dolphin", "whale", "shark", "octopus", "jellyfish", "sea turtle", "crab",
    "lobster", "starfish", "seal", "goldfish", "frog", "snake", "lizard", "crocodile",
    "tortoise", "butterfly", "bee", "ladybug", "spider", "snail", "dragonfly", "ant",
)

OBJECTS = (
    "wooden chair", "leather armchair", "sofa", "table lamp", "wall clock", "alarm clock", "mirror",
    "television", "laptop", "smartphone", "computer keyboard", "film camera", "typewriter", "acoustic guitar",
    "violin", "grand piano", "drum kit", "trumpet", "saxophone", "microphone", "motorcycle", "bus",
    "fire truck", "airplane", "helicopter", "sailboat", "canoe", "steam train", "skateboard", "scooter",
    "suitcase", "umbrella", "wallet", "wristwatch", "straw hat", "wool scarf", "pearl necklace", "teapot",
    "coffee mug", "wine glass", "frying pan", "kettle", "toaster", "blender", "refrigerator",
    "washing machine", "vacuum cleaner", "broom", "bucket", "hammer", "screwdriver", "wrench", "ladder",
    "shovel", "wheelbarrow", "lawn mower", "vase of flowers", "potted plant", "teddy bear", "doll",
    "toy robot", "soccer ball", "basketball", "tennis racket", "baseball bat", "chessboard", "deck of cards",
    "notebook", "pencil", "fountain pen", "pair of scissors", "stapler", "globe", "paper map", "envelope",
    "key", "padlock", "light bulb", "fire hydrant", "mailbox", "traffic light", "stop sign", "park bench",
    "street lamp", "birdhouse", "tent", "sleeping bag", "compass", "telescope", "microscope", "hourglass",
    "sewing machine", "loaf of bread", "pizza", "hamburger", "birthday cake", "cup of coffee",
    "glass of orange juice", "plate of pasta", "bowl of soup", "sandwich", "ice cream cone", "croissant",
    "sushi platter", "basket of eggs", "pair of sneakers", "pair of glasses", "pair of headphones",
    "wooden spoon", "lantern",
)

# Objects small enough to photograph on a table.
TABLETOP_OBJECTS = (
    "teapot", "coffee mug", "wine glass", "wristwatch", "smartphone", "pair of glasses", "notebook", "pencil",
    "fountain pen", "pair of scissors", "key", "padlock", "light bulb", "compass", "hourglass", "loaf of bread",
    "birthday cake", "cup of coffee", "croissant", "sandwich", "vase of flowers", "potted plant", "teddy bear",
    "deck of cards", "film camera", "wallet", "lantern", "wooden spoon", "alarm clock", "globe",
)

# People by age.

PEOPLE_BY_AGE = (
    "baby", "newborn baby", "toddler", "little girl", "little boy", "schoolgirl", "schoolboy", "teenage girl",
    "teenage boy", "young woman", "young man", "college student", "middle-aged woman", "middle-aged man",
    "elderly woman", "elderly man", "grandmother", "grandfather", "retired couple", "mother holding a baby",
    "father carrying a toddler", "family with two children",
)

# (age in years, nouns used at that age).
AGES = (
    (3, ("boy", "girl")), (5, ("boy", "girl")), (8, ("boy", "girl")), (11, ("boy", "girl")),
    (13, ("boy", "girl")), (16, ("boy", "girl")), (18, ("man", "woman")), (20, ("man", "woman")),
    (25, ("man", "woman")), (30, ("man", "woman")), (35, ("man", "woman")), (40, ("man", "woman")),
    (45, ("man", "woman")), (50, ("man", "woman")), (55, ("man", "woman")), (60, ("man", "woman")),
    (65, ("man", "woman")), (70, ("man", "woman")), (75, ("man", "woman")), (80, ("man", "woman")),
    (85, ("man", "woman")), (90, ("man", "woman")),
)

# People by activity. Each entry completes "A person ...", so none uses a gendered pronoun.
ACTIVITIES = (
    "riding a bicycle", "riding a horse", "playing the guitar", "playing the piano", "playing the violin",
    "playing chess", "playing soccer", "playing basketball", "playing tennis", "playing video games",
    "reading a book", "reading a newspaper", "writing in a notebook", "typing on a laptop", "talking on the phone",
    "taking a selfie", "cooking in a kitchen", "baking bread", "chopping vegetables", "washing dishes",
    "eating breakfast", "drinking coffee", "sleeping on a couch", "running in a park", "jogging on a beach",
    "hiking up a mountain", "climbing a rock wall", "swimming in a lake", "surfing a wave", "skiing down a slope",
    "snowboarding", "ice skating", "skateboarding", "doing yoga", "lifting weights",
    "dancing", "singing into a microphone", "painting on a canvas", "drawing with a pencil", "knitting",
    "gardening", "watering plants", "mowing the lawn", "walking a dog", "feeding pigeons",
    "fishing from a boat", "rowing a boat", "driving a car", "waiting at a bus stop", "shopping for groceries",
    "carrying shopping bags", "pushing a stroller", "fixing a bicycle", "repairing a car engine",
    "building a sandcastle", "flying a kite", "taking a photograph", "giving a speech", "teaching a class",
    "studying at a desk", "meditating", "stretching", "juggling", "playing the drums", "sweeping the floor",
    "ironing a shirt", "making a snowman", "pouring a glass of wine", "hanging laundry", "sewing a dress",
)

GROUP_ACTIVITIES = (
    "A group of friends having a picnic",
    "A team playing soccer on a field",
    "People dancing at a wedding",
    "A family eating dinner together",
    "Children playing in a playground",
    "Students listening to a lecture",
    "A band performing on stage",
    "Workers building a house",
    "Runners in a marathon",
    "Cyclists racing on a road",
    "A choir singing in a church",
    "Coworkers in a business meeting",
)

# Facial expressions.

EXPRESSION_ADJECTIVES = (
    "happy", "sad", "angry", "surprised", "scared", "disgusted", "confused", "bored",
    "tired", "excited", "worried", "calm", "proud", "shy", "embarrassed", "thoughtful",
    "suspicious", "amused", "annoyed", "nervous", "relieved", "determined", "serious", "skeptical",
    "shocked", "sleepy", "smug", "hopeful", "grumpy", "joyful",
)

EXPRESSION_VERBS = (
    "smiling", "laughing", "crying", "frowning", "yawning", "winking", "screaming", "grimacing",
    "pouting", "blushing", "grinning", "squinting", "sticking out their tongue", "raising an eyebrow",
)

# Seasons, weather and times of day.

SEASONS = ("spring", "summer", "autumn", "winter")

SEASON_PLACES = (
    "forest", "park", "city street", "village", "garden", "lake", "vineyard", "farm",
    "mountain valley", "backyard", "country road", "orchard", "riverbank", "university campus",
)

SEASON_SCENES = (
    "Autumn leaves on a forest floor",
    "Cherry blossoms in full bloom",
    "A snowman in a front yard",
    "Pumpkins on a porch in autumn",
    "A beach umbrella in the summer sun",
    "Tulips blooming in spring",
    "Bare trees in late autumn",
    "Snow-covered pine trees",
    "Maple trees with red leaves",
    "A summer picnic in a meadow",
    "A spring shower over a green field",
    "A pile of raked leaves in the fall",
    "A Christmas market in winter",
    "Fresh green buds on a branch",
    "Sunflowers at the end of summer",
    "A frozen fountain in a park in winter",
    "A sled on a snowy hill",
    "Ripe peaches on a tree in summer",
)

WEATHER_ADJECTIVES = (
    "rainy", "snowy", "foggy", "cloudy", "sunny", "windy", "stormy", "misty",
    "overcast", "hazy", "frosty", "humid",
)

WEATHER_PLACES = (
    "street", "beach", "harbor", "mountain pass", "farmhouse", "bridge", "soccer field",
    "train station", "lake", "market square",
)

WEATHER_SCENES = (
    "A lightning strike over a city",
    "A rainbow over green hills",
    "A tornado touching down on a plain",
    "Hailstones on the grass",
    "Dark storm clouds gathering",
    "A double rainbow after rain",
    "Heavy rain falling on a street",
    "Snow falling on a quiet street",
    "Dense fog over a river",
    "A dust storm approaching a town",
    "Raindrops on a window",
    "Frost on a windowpane",
    "Icicles hanging from a roof",
    "Sunlight breaking through clouds",
    "A flooded field after heavy rain",
    "Strong wind bending palm trees",
    "A blizzard on a mountain",
    "A clear blue sky with no clouds",
    "Puffy white clouds in a blue sky",
    "A heat haze over a desert road",
)

TIMES_OF_DAY = (
    "at sunrise", "at dawn", "in the morning", "at noon", "in the afternoon", "at golden hour",
    "at sunset", "at dusk", "at twilight", "at night", "at midnight", "during the blue hour",
)

TIME_PLACES = (
    "city skyline", "beach", "mountain lake", "desert", "harbor", "farm field", "busy street",
    "forest", "bridge", "small town",
)

# Art styles, photographic styles and camera views. `textspan.pools` pairs each style or view
# with a few of the subjects, chosen by rotation.

ART_STYLES = (
    "watercolor painting", "oil painting", "acrylic painting", "pencil sketch", "charcoal drawing",
    "ink drawing", "pastel drawing", "woodcut print", "linocut print", "etching",
    "mosaic", "stained glass window", "fresco", "comic book illustration", "manga drawing",
    "anime illustration", "pixel art image", "vector illustration", "child's crayon drawing", "graffiti mural",
    "impressionist painting", "cubist painting", "surrealist painting", "pop art print", "art nouveau poster",
    "art deco poster", "baroque painting", "Renaissance painting", "ukiyo-e print", "Chinese ink painting",
    "abstract expressionist painting", "minimalist illustration", "paper collage", "embroidery", "paper cutout",
    "3D render", "low-poly render", "claymation still", "cartoon drawing", "line drawing",
)

ART_SUBJECTS = (
    "a harbor", "a cat", "a mountain village", "a bowl of fruit", "a woman reading", "a city street",
    "a sailboat", "a lighthouse", "a forest", "a horse", "a vase of flowers", "an old man",
    "a castle", "a dragon", "a bridge", "a train station", "a garden", "a bird",
    "a ballet dancer", "a farmhouse",
)

PHOTO_STYLES = (
    "black-and-white photo", "sepia photo", "long-exposure photo", "macro photo", "Polaroid photo",
    "35mm film photo", "infrared photo", "high-dynamic-range photo", "tilt-shift photo", "double-exposure photo",
    "blurry photo", "overexposed photo", "underexposed photo", "high-contrast photo", "grainy photo",
    "vintage photo", "panoramic photo", "silhouette photo", "motion-blurred photo", "thermal image",
    "X-ray image", "low-light photo", "soft-focus photo", "cross-processed photo", "snapshot",
    "studio photo", "professional photo", "amateur photo",
)

PHOTO_SUBJECTS = (
    "a city street", "a dog", "a flower", "a woman", "a man", "a car", "a mountain", "a building",
    "a child", "a tree", "a river", "a horse", "a hand", "a coffee cup", "a train", "a crowd",
    "a bicycle", "a bird", "a staircase", "a skyline",
)

CAMERA_VIEWS = (
    "aerial view", "bird's-eye view", "worm's-eye view", "low-angle shot", "high-angle shot",
    "overhead shot", "close-up", "extreme close-up", "wide shot", "medium shot",
    "long shot", "side view", "front view", "rear view", "Dutch-angle shot",
    "fisheye view", "telephoto shot", "top-down view", "eye-level shot", "point-of-view shot",
    "distant view", "panoramic view", "three-quarter view", "cropped view",
)

CAMERA_SUBJECTS = (
    "a skyscraper", "a cyclist", "a cathedral", "a sports car", "a sleeping dog", "a waterfall",
    "a busy intersection", "a suspension bridge", "an oak tree", "a football stadium", "a chess board",
    "a dinner table", "a mountain road", "a child on a swing", "a lighthouse", "a sailboat",
    "a runner", "a village", "a statue", "a parked motorcycle",
)
