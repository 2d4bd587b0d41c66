"""Rules that read what a sentence asks for: an action, a question, a request, a deadline.

Why rules: without a language model the local engine still has to answer "what are the
action items?" and "what does this mail ask me?". The wording of office text is formulaic
("Anna will send …", "Please review …", "by Friday", "Could you …?"), so a handful of
patterns finds most of it, and a miss is visible to the user, who reads the source anyway.
Everything here is English-centred; other languages fall back to "?" and "please"-less text.

An owner is named only when the text names a person: a capitalised name that is not a
word of the sentence's grammar ("As to the timing…", "However, we…"), not a Roman numeral
or an acronym ("II", "IT"), not a pronoun, and, when the caller passes the words of the
whole document, not a word the document also uses in lower case ("Email will…" beside
"your email address"); or an e-mail address or an @mention. A wrong owner misleads more
than none, so a doubtful one is dropped.
"""

from __future__ import annotations

import re

__all__ = [
    "deadline", "is_action", "is_question", "is_request", "lowercase_words", "owner",
    "pleasantry",
]  # fmt: skip

_DAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WHEN = (
    rf"(?:today|tonight|tomorrow|(?:next |this )?(?:{_DAY}|week|month|quarter)"
    r"|(?:the )?end of (?:the )?(?:day|week|month|quarter|year)|eod|eow|noon|midnight"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTH}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}(?:[./]\d{2,4})?|\d{1,2}(?::\d{2})? ?(?:am|pm))"
)
_DEADLINE = re.compile(
    rf"\b(?:(?:by|before|until|till|no later than|due(?: on| by)?|deadline(?: is)?:?) {_WHEN}"
    r"|asap|eod|eow|deadline)\b",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(?:please|pls|kindly|could you|can you|would you|will you|would it be possible"
    r"|make sure|don't forget|do not forget|remember to|let me know|let us know|lmk"
    r"|i need|we need|i'd like you|we'd like you|i would like|we would like|asap)\b",
    re.IGNORECASE,
)
_OBLIGATION = re.compile(
    r"\b(?:needs? to|must|ha(?:s|ve) to|(?:is|are) required to|to-?do|action items?"
    r"|follow[- ]up on|next steps?:)|^\s*(?:action|todo|ai)\s*:",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(?:we decided|it was decided|decided to|(?:we |all )?agreed (?:to|that|on)"
    r"|decision:|was approved|were approved|signed off)\b",
    re.IGNORECASE,
)
_NAME = r"(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+|[A-Z]{2,5})(?: [A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+)?"
_ADDRESS = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_PRONOUN = r"(?:I|we|We|you|You|he|He|she|She|they|They)"
_COMMIT = re.compile(
    rf"(?:^|[\s,;:(])(?P<who>{_ADDRESS}|{_NAME}|{_PRONOUN})"
    r"(?:\s+(?:will|shall|should|is going to|are going to|am going to|needs? to|must"
    r"|ha(?:s|ve) to|(?:has|have) agreed to|offered to|volunteered to)|(?:'ll|’ll))\s+(?!be\b)"
    r"(?P<verb>[a-z]+)"
)
_NAME_TO = re.compile(rf"^(?P<who>{_NAME})\s+to\s+(?!be\b)[a-z]+")
_ADDRESSED = re.compile(
    rf"^(?:@?(?P<who>{_NAME})\s*[:,]\s+(?=\w)|@(?P<at>[\w.-]+))|\((?P<paren>{_NAME})\)[.!]?$"
    rf"|\b(?:owner|assigned to|assignee|responsible)\s*:?\s+(?P<assigned>{_NAME})"
)
_ADDRESS_PREFIX = re.compile(rf"^\s*@?{_NAME}\s*[:,]\s+")
_IMPERATIVE_VERBS = {
    "add", "approve", "arrange", "ask", "book", "bring", "buy", "call", "cancel", "check",
    "circulate", "clarify", "collect", "complete", "confirm", "contact", "create", "decide",
    "deliver", "deploy", "draft", "email", "fill", "finalise", "finalize", "finish", "fix",
    "follow", "forward", "get", "invite", "let", "look", "make", "move", "order", "organise",
    "organize", "pay", "plan", "prepare", "print", "provide", "put", "read", "remind", "remove",
    "reply", "request", "reserve", "respond", "return", "review", "revise", "schedule", "send",
    "set", "share", "sign", "start", "submit", "talk", "tell", "test", "update", "upload",
    "verify", "write"
}  # fmt: skip
# Capitalised words that are not names: grammar, sentence openers, greetings, calendar.
_NOT_NAMES = {
    "a", "about", "above", "according", "access", "action", "actually", "additionally",
    "after", "afterwards", "again", "agenda", "all", "also", "although", "always", "an",
    "and", "another", "any", "anybody", "anyone", "anything", "anyway", "apparently",
    "april", "are", "as", "asap", "at", "attached", "attendees", "august", "basically",
    "be", "because", "before", "below", "besides", "best", "both", "but", "by", "can",
    "certainly", "cheers", "clearly", "congratulations", "consequently", "could", "currently",
    "dear", "decision", "december", "despite", "did", "do", "does", "due", "during", "each",
    "either", "email", "eod", "even", "eventually", "every", "everybody", "everyone",
    "everything", "february", "finally", "first", "firstly", "following", "for", "friday",
    "from", "further", "furthermore", "fwd", "fyi", "generally", "go", "good", "got",
    "great", "greetings", "guys", "had", "happy", "has", "have", "he", "hello", "hence",
    "her", "here", "hey", "hi", "his", "hope", "hopefully", "how", "however", "i", "if",
    "in", "indeed", "initially", "instead", "is", "it", "its", "january", "july", "june",
    "just", "last", "later", "let", "like", "likewise", "many", "march", "may", "maybe",
    "meanwhile", "might", "monday", "more", "moreover", "most", "much", "must", "my",
    "need", "neither", "never", "nevertheless", "next", "nb", "no", "nobody", "none",
    "nonetheless", "nor", "not", "note", "notes", "nothing", "november", "now", "october",
    "of", "oh", "ok", "okay", "on", "once", "one", "only", "or", "other", "otherwise", "our",
    "overall", "owner", "per", "perhaps", "please", "plus", "prior", "ps", "re", "recently",
    "regarding", "regards", "rsvp", "saturday", "second", "secondly", "september", "shall",
    "she", "should", "similarly", "since", "so", "some", "somebody", "someone", "something",
    "sorry", "specifically", "still", "subject", "such", "sunday", "sure", "talk", "tbd",
    "thank", "thanks", "that", "the", "their", "then", "there", "therefore", "these", "they",
    "third", "this", "those", "though", "through", "thursday", "thus", "to", "today",
    "todo", "tomorrow", "tonight", "too", "true", "try", "tuesday", "ultimately", "under",
    "unfortunately", "unless", "until", "upon", "we", "wednesday", "well", "what",
    "whatever", "when", "whenever", "where", "whereas", "whether", "which", "while", "who",
    "why", "will", "with", "within", "without", "would", "yes", "yesterday", "yet", "you",
    "your",
}  # fmt: skip
# Word shapes that are almost never a first name or surname ("Calibration", "Memberships").
_NOT_NAME_SHAPE = re.compile(
    r"(?:ly|ing|ed|tion|sion|ment|ments|ness|ity|ship|ships|ance|ence|ful|less|able|ible"
    r"|ous|ive|ure|ism|ist)$",
    re.IGNORECASE,
)
_ROMAN = re.compile(r"^[IVXLCDM]+$")
_ADDRESS_ONLY = re.compile(rf"^(?:{_ADDRESS}|@[\w.-]+)$")
_LOWER_WORD = re.compile(r"\b[a-zß-öø-ÿ][a-zß-öø-ÿ'’-]*\b")
_WH_START = re.compile(
    r"^(?:what|when|where|who|whom|whose|which|why|how|could you|can you|would you|will you"
    r"|do you|does|did|is there|are there|is it|shall we|should we|may i|can i|could i)\b",
    re.IGNORECASE,
)
_PLEASANTRY = re.compile(
    r"\b(?:how are you|how have you been|how's it going|hope (?:you|this|all|everything)"
    r"|thanks?|thank you|looking forward|have a (?:nice|great|good)|kind regards"
    r"|best regards|many thanks|let me know if you have any (?:other |further )?questions)\b",
    re.IGNORECASE,
)


def deadline(sentence: str) -> str:
    """The deadline phrase of ``sentence`` ("by Friday", "ASAP"), or ""."""
    match = _DEADLINE.search(sentence)
    return match.group(0) if match else ""


def _first_word(sentence: str) -> tuple[str, str]:
    """The first two words, lower case, after an addressee ("Mark: update …")."""
    sentence = _ADDRESS_PREFIX.sub("", sentence[:80], count=1)
    words = re.findall(r"[A-Za-z']+", sentence)
    return (words[0].lower() if words else "", words[1].lower() if len(words) > 1 else "")


def is_action(sentence: str) -> bool:
    """Does ``sentence`` ask for, assign, promise or decide something? Small talk ("Let me
    know if you have any questions.") does not."""
    if pleasantry(sentence):
        return False
    if _REQUEST.search(sentence) or _OBLIGATION.search(sentence) or _DECISION.search(sentence):
        return True
    if _NAME_TO.search(sentence) and owner(sentence):
        return True
    commit = _COMMIT.search(sentence)
    if commit and (commit.group("who") in ("I", "we", "We") or owner(sentence)):
        return True
    first, second = _first_word(sentence)
    if first in _IMPERATIVE_VERBS and second not in ("is", "are", "was", "were", "of", "and"):
        return not sentence.rstrip().endswith("?")
    return bool(deadline(sentence))  # "by Friday", "due 3 May", "ASAP": someone must act


def lowercase_words(text: str) -> frozenset[str]:
    """The words ``text`` writes in lower case: evidence that a capitalised one is not a
    name (pass it to ``owner``)."""
    return frozenset(_LOWER_WORD.findall(text))


def owner(sentence: str, common: frozenset[str] = frozenset()) -> str:
    """The person an action is for, when the sentence names one ("Anna will …",
    "Mark, please …", "@anna", "anna@example.com will …"), else "".

    ``common`` holds the words the document uses in lower case (``lowercase_words``): a
    capitalised word among them is a sentence opener, not a name.
    """
    for match in (_ADDRESSED.search(sentence), _NAME_TO.search(sentence)):
        if match:
            for key in ("who", "at", "paren", "assigned"):
                value = match.groupdict().get(key) or ""
                who = f"@{value}" if key == "at" and value else _name(value, common)
                if who:
                    return who
    for match in _COMMIT.finditer(sentence):
        who = _name(match.group("who"), common)
        if who:
            return who
    return ""


def _name(words: str, common: frozenset[str] = frozenset()) -> str:
    """``"Then Anna"`` → ``"Anna"``; ``"As"``, ``"II"``, ``"We"`` → ``""``: the capitalised
    words that can only be a name (see the module doc), or an address as it is."""
    if _ADDRESS_ONLY.match(words):
        return words
    parts = words.split()
    while parts and parts[0].lower() in _NOT_NAMES:
        parts.pop(0)
    if not parts or any(not _name_word(p, common) for p in parts):
        return ""
    return " ".join(parts)


def _name_word(word: str, common: frozenset[str]) -> bool:
    lower = word.lower()
    if word.isupper() or _ROMAN.match(word):  # "II", "IT", "ENA": numerals and acronyms
        return False
    if lower in _NOT_NAMES or lower in common or not word[:1].isupper():
        return False
    return not _NOT_NAME_SHAPE.search(word)


def is_question(sentence: str) -> bool:
    """A question worth answering: ends with "?" or starts like one; not "How are you?"."""
    text = sentence.strip().rstrip("\"'”’)»")
    if pleasantry(text):
        return False
    if text.endswith(("?", "？")):
        return True
    return bool(_WH_START.match(text)) and not text.endswith((".", "!"))


def is_request(sentence: str) -> bool:
    """Something the writer asks the reader to do or deliver ("Please send …", "by Monday")."""
    if pleasantry(sentence):
        return False
    return bool(_REQUEST.search(sentence) or deadline(sentence) or _OBLIGATION.search(sentence))


def pleasantry(sentence: str) -> bool:
    """Small talk ("Hope you are well.", "Thanks!") is not something to answer."""
    return bool(_PLEASANTRY.search(sentence)) and len(sentence.split()) <= 8
