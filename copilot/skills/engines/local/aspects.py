"""Which words may name an aspect: nouns and noun phrases, by lexicon and suffix.

An aspect is the thing a clause is positive or negative about ("battery", "customer
service"), so it must be a noun. There is no tagger on this path (spaCy's English model is
not on PyPI and nothing is downloaded at run time), so the test is a lexicon: function
words, adverbs, adjectives and verbs that reviews use are listed, and the open classes are
caught by their suffixes ("-ly" adverbs, "-ous"/"-ful"/"-ive"/"-able" adjectives, "-ed"
verbs), with the nouns that share those endings ("family", "supply", "speed") listed as
exceptions. Words for the reviewer's own circle ("cat", "wife", "kids") are nouns but not
what is being reviewed, so they are refused too. It is a heuristic, measured on the labelled
candidates in tests/skills/test_aspect_words.py, not a parse.
"""

from __future__ import annotations

import re

_FUNCTION_WORDS = """a an the this that these those it its it's i i'm i've i'd me my mine we
    our ours you your yours they them their theirs he him his she her hers who whom whose
    which what whatever is are was were be been being am do does did done doing have has had
    having get got gets getting make made makes will would can could should shall may might
    must not no nor never none nothing nobody very really so too quite just also even still
    only much more most less least all any some every each both either neither one two three
    four five first second last next other another such same own in on at of for to from with
    without by about into onto over under up down out off again than then there here when
    where why how and or but if as because until unless since while though although within
    upon via per among between through during against despite toward towards like unlike
    before after behind beyond around across along however therefore otherwise
    due regarding concerning including plus yes yeah ok okay oh wow hey please thanks thank
    lot lots bit bits thing things stuff way ways kind sort type anything everything
    something someone anyone everyone everybody somebody whole part
    day days week weeks month months year years time times hour hours minute minutes
    today yesterday tomorrow now ago soon later early earlier already yet ever once twice
    right left away back well else almost enough rather maybe perhaps instead anyway though
    basically actually literally honestly seriously definitely probably possibly certainly
    simply truly clearly obviously apparently generally usually normally mostly nearly
    pretty fairly somewhat extremely incredibly super highly absolutely totally completely
    quickly slowly easily"""

# Verbs and adjectives common in reviews that no suffix rule catches.
_VERBS = (
    """work works worked working use used uses using come came comes coming go goes went
    going gone lasts last lasted lasting looks look looked feels feel felt seems seem seemed
    sounds sound tastes smells arrived arrive arrives keeps keep kept stopped stop stops start
    started takes take took taken give gives gave given says say said buy bought buying
    bought order ordered try tried tries need needed needs want wanted wants know knew think
    thought find found put run ran runs see saw seen tell told call called let lets help
    helped return returned expect expected recommend recommended love loved loves hate
    hated hates like liked likes died dies broke broken break breaks fix fixed fits fit
    fitted charge charges charged"""
    + " sent send sends"
)

_ADJECTIVES = """good great bad best worst better worse fine nice poor perfect excellent
    terrible awful horrible amazing awesome lovely new old big small large little long short
    high low fast slow cheap expensive easy hard hot cold warm cool full empty clean dirty
    quick bright dark heavy light loud quiet soft strong weak thin thick tiny huge
    happy sad glad sure sorry real true free whole main able ready late wrong okay fresh
    same different special simple clear nice decent solid overall due worth"""

# Nouns, but of the reviewer's life rather than of the thing reviewed.
_NOT_THE_SUBJECT = """cat cats dog dogs pet pets wife husband son daughter kid kids child
    children baby mom mum dad mother father brother sister friend friends family
    people person guy guys girl boy man woman men women someone myself himself herself
    ourselves themselves yourself"""

_REFUSED = frozenset(
    (_FUNCTION_WORDS + " " + _VERBS + " " + _ADJECTIVES + " " + _NOT_THE_SUBJECT).split()
)

# Nouns whose ending looks like an adverb's, an adjective's or a past tense's.
_NOUN_EXCEPTION_TEXT = """family supply assembly reply anomaly ally belly jelly rally fly
    butterfly july italy monopoly bully lily doily
    seabed hundred bread thread spread head tread embed bed
    cable table label stable fable vegetable timetable turntable syllable bible
    initiative alternative executive representative detective motive adhesive explosive
    objective perspective incentive native directive drive archive hive olive
    chemical mechanical vessel"""
_NOUN_EXCEPTIONS = frozenset(_NOUN_EXCEPTION_TEXT.split())

_ADVERB = re.compile(r"ly$")
_ADJECTIVE = re.compile(r"(?:ous|ful|ive|able|ible|less|ical|ional|ular)$")
_PAST = re.compile(r"(?:[^e]ed|ied)$")
_WORD = re.compile(r"[a-z][a-z'-]*")


def is_aspect_word(word: str) -> bool:
    """True when ``word`` (any case) may be part of an aspect's name: a likely noun."""
    w = word.lower().strip("'-")
    if len(w) < 3 or not _WORD.fullmatch(w) or w in _REFUSED:
        return False
    if w in _NOUN_EXCEPTIONS:
        return True
    if w.endswith(("n't", "'ll", "'re", "'ve", "'d", "'m")):
        return False
    if _ADVERB.search(w) or _ADJECTIVE.search(w):
        return False
    return not (len(w) > 4 and _PAST.search(w))
