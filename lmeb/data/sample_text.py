"""The words the synthetic sample (``lmeb.data.sample``) writes its documents and queries with.

A *concept* is one thing that happened (or one job a tool does), said three ways with few words in
common; concepts come in families of three that are close in meaning. A document states a concept in
one wording, its query asks in another, so neither exact word overlap (BM25) nor meaning alone (a
neural encoder, confused by the family's other concepts) ranks it first every time. Entities (people,
tools), places and dates are shared across documents on purpose: they are what distractors share.
"""

# ruff: noqa: E501, SIM905 (a word bank reads best one concept per line, names as prose)

from __future__ import annotations

import random

# family -> concepts -> three wordings (verb phrases in the base form)
LIFE: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (  # music
        ("take up the violin", "start lessons on a string instrument", "learn to play the fiddle"),
        ("perform at a piano recital", "play the keys for an audience at a concert", "give a keyboard show on stage"),
        ("buy a secondhand guitar", "purchase a used acoustic six-string", "pick up a pre-owned guitar at a shop"),
    ),
    (  # pets
        ("adopt a puppy from the shelter", "bring home a young dog from the rescue centre", "give a homeless pup a family"),
        ("take the cat to the vet", "have the kitten checked at the animal clinic", "see a veterinarian about the pet"),
        ("teach the dog new tricks", "train the puppy to sit and roll over", "work on obedience commands with the pet"),
    ),
    (  # fitness
        ("run a marathon", "finish a 42 kilometre road race", "complete the long distance running event"),
        ("join a yoga class", "sign up for weekly stretching and breathing sessions", "start going to a yoga studio"),
        ("go hiking in the mountains", "trek along alpine trails", "walk the high ridge paths for several days"),
    ),
    (  # work
        ("get a promotion at work", "be made team lead by the boss", "move up to a senior position at the company"),
        ("quit the office job", "hand in a resignation letter", "leave the firm after many years"),
        ("open a small bakery", "start a shop selling bread and cakes", "launch a pastry store downtown"),
    ),
    (  # family
        ("celebrate a daughter's birthday", "throw a party for the little girl turning seven", "organise cake and balloons for the kid"),
        ("visit the grandparents in the countryside", "spend a weekend with grandma and grandpa on their farm", "drive out to see elderly relatives in their village"),
        ("plan a wedding", "organise the marriage ceremony and reception", "arrange the venue and guests for getting married"),
    ),
    (  # travel
        ("fly to Japan for a holiday", "take a vacation trip to Tokyo and Kyoto", "spend two weeks touring Japanese cities"),
        ("go camping by the lake", "pitch a tent next to the water for the weekend", "sleep outdoors at a lakeside campsite"),
        ("take a road trip along the coast", "drive down the seaside highway with friends", "travel by car from one beach town to the next"),
    ),
    (  # learning
        ("enroll in a pottery workshop", "learn to shape clay on a wheel", "take a ceramics course"),
        ("study for a nursing degree", "train at college to become a nurse", "attend classes in patient care"),
        ("practice speaking Spanish", "take lessons in the language of Spain and Mexico", "chat with a tutor to improve Castilian conversation"),
    ),
    (  # home
        ("paint the living room", "put a fresh colour on the lounge walls", "redecorate the front room"),
        ("move into a new apartment", "relocate to a flat across town", "sign the lease and carry boxes into the new place"),
        ("plant a vegetable garden", "grow tomatoes and beans in the backyard", "dig beds for homegrown produce"),
    ),
    (  # health
        ("break an ankle", "fracture a foot bone and wear a cast", "get hurt in a fall and need crutches"),
        ("start therapy sessions", "begin seeing a counsellor every week", "talk to a psychologist about stress"),
        ("quit smoking", "give up cigarettes for good", "stop buying tobacco"),
    ),
    (  # community
        ("volunteer at a food bank", "help hand out groceries to families in need", "sort donated meals at the charity pantry"),
        ("join a support group", "attend meetings with others who share the same struggle", "find a circle of people going through similar things"),
        ("organise a neighbourhood cleanup", "gather residents to pick up litter in the streets", "lead a volunteer day tidying the local park"),
    ),
    (  # creative
        ("paint a sunset landscape", "create a watercolour of the evening sky", "finish a canvas showing dusk over the hills"),
        ("write a short novel", "finish drafting a book of fiction", "complete a manuscript for a story"),
        ("take photos of wildlife", "photograph birds and deer in the forest", "capture animals on camera during a nature walk"),
    ),
    (  # food
        ("bake sourdough bread", "make a loaf with a wild yeast starter", "prepare homemade crusty bread"),
        ("try a vegan diet", "stop eating meat and dairy", "switch to plant-based meals"),
        ("cook dinner for the neighbours", "host a meal for the people next door", "invite nearby families over to eat"),
    ),
)

TASKS: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (  # images
        ("convert an image to grayscale", "remove the colours from a photo", "turn a picture black and white"),
        ("resize an image to a thumbnail", "shrink a photo to a small preview", "scale a picture down to fewer pixels"),
        ("detect faces in a photo", "find people's heads in a picture", "locate human faces within an image"),
    ),
    (  # text
        ("translate English text to French", "render a sentence in another language such as French", "convert an English paragraph into French"),
        ("summarise a long article", "produce a short digest of a lengthy document", "condense a report into a few lines"),
        ("classify the sentiment of a review", "tell whether customer feedback is positive or negative", "rate the mood of a product comment"),
    ),
    (  # audio
        ("transcribe speech to text", "turn a voice recording into written words", "write down what is said in an audio file"),
        ("remove background noise from audio", "clean up hiss in a recording", "filter out unwanted sound from a clip"),
        ("generate speech from text", "read a sentence aloud with a synthetic voice", "produce spoken audio for written input"),
    ),
    (  # tables
        ("sort a table by a column", "order spreadsheet rows by one field", "arrange records by a chosen attribute"),
        ("remove duplicate rows", "drop repeated records from a dataset", "keep only unique entries in a table"),
        ("fill missing values", "replace empty cells with defaults", "impute gaps in the data"),
    ),
    (  # household
        ("put a mug in the coffee machine", "place a cup under the espresso maker", "set a drinking vessel on the brewer"),
        ("clean a plate and put it in the cabinet", "wash a dish then store it in the cupboard", "rinse the tableware and shelve it"),
        ("heat an egg in the microwave", "warm up an egg using the oven appliance", "cook an egg briefly with microwaves"),
    ),
    (  # files
        ("download a file from a URL", "fetch a document from a web address", "save remote content locally"),
        ("compress a folder into a zip archive", "pack a directory into one compressed file", "bundle files into a zip"),
        ("send an email with an attachment", "mail a message including a document", "deliver a note with a file added"),
    ),
)

PEOPLE = (
    "Caroline Melanie Joanna Nate Audrey Andrew Evan Sam James John Maria Tim Deborah Jolene Calvin Dave "
    "Gina Jon Priya Omar Lena Kofi Hiro Ines Marta Felix Yara Tomas Nadia Pavel Rosa Ade"
).split()
PLACES = (
    "Lisbon Oslo Denver Nairobi Kyoto Boston Krakow Seville Austin Dublin Hanoi Quito Perth Bergen Tucson Lyon"
).split()
TOOLS = (
    "PyTorch TensorFlow HuggingFace pandas OpenCV ffmpeg scikit-learn requests Pillow spaCy librosa NumPy "
    "ALFWorld WebShop"
).split()
MONTHS = "January February March April May June July August September October November December".split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

LEADS = ("decided to", "finally got to", "tried to", "managed to", "went off to", "was able to", "chose to")
FIRST_PERSON = ("Guess what, I just got to", "Last week I decided to", "I finally managed to", "I really wanted to",
                "You won't believe it, I got to", "So I went ahead and chose to")
FOLLOW_UPS = ("talked again about the time they got to", "later said it was hard to", "still remembers how it felt to",
              "wrote in a diary about trying to", "told friends it was worth it to")
NEGATIONS = ("never got around to", "cancelled the plans to", "found it impossible to", "was too afraid to",
             "gave up on the idea to", "could not afford to")
TOOL_NEGATIONS = ("does not support a way to", "has no function to", "cannot be used to", "was never designed to")
TOOL_LEADS = ("Use this to", "This function lets you", "A utility to", "Call this endpoint to", "Helps you")
FILLERS = (
    "It had been a long week.", "The weather was mild and grey.", "Everyone seemed in a good mood.",
    "Nobody expected it to take so long.", "A friend came along for part of it.", "It cost more than planned.",
    "There were a few hiccups at the start.", "They took plenty of pictures.", "Afterwards they went home early.",
    "Some of it was harder than it looked.", "They said they would do it again.", "The day started early.",
)
TOOL_FILLERS = (
    "Returns the result as a new object.", "Raises an error on invalid input.", "Works on CPU and GPU.",
    "Supports batches.", "Arguments are keyword-only.", "Deprecated aliases are kept for compatibility.",
    "The default settings suit most cases.", "Thread-safe.", "Requires the optional extras.",
)
QUESTIONS = ("When did {p} {c}?", "Did {p} ever {c}?", "What do we know about {p} trying to {c}?",
             "Why did {p} want to {c}?", "How did it go when {p} set out to {c}?", "Who helped {p} {c}?",
             "Did {p} tell {o} about wanting to {c}?", "{o} asked: when did {p} {c}?")
TOOL_QUESTIONS = ("How can I {c} with {p}?", "Not {o}: how do I {c} in {p}?", "I need to {c}; what should I call in {p}?",
                  "Which {p} API lets me {c}?", "Find me a tool in {p} to {c}.", "Is there a way in {p} to {c}?")


def date_words(rng: random.Random) -> tuple[str, str]:
    """A date as a document writes it (weekday, day, month, year) and as a query may name it (month year)."""
    month, year = rng.choice(MONTHS), rng.choice((2022, 2023))
    return f"{rng.choice(WEEKDAYS)} {rng.randint(1, 28)} {month}, {year}", f"in {month} {year}"
