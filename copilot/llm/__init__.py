"""Talking to language models: the OpenAI-compatible engine, token counts, redaction."""

from copilot.llm.errors import LLMError
from copilot.llm.openai_engine import Completion, OpenAIEngine, Usage, estimate_cost
from copilot.llm.redact import RedactionPolicy, Redactor, redact_messages
from copilot.llm.tokens import count_messages, count_tokens, truncate_tokens
from copilot.llm.types import Message

__all__ = [
    "Completion",
    "LLMError",
    "Message",
    "OpenAIEngine",
    "RedactionPolicy",
    "Redactor",
    "Usage",
    "count_messages",
    "count_tokens",
    "estimate_cost",
    "redact_messages",
    "truncate_tokens",
]
