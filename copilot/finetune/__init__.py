"""Fine-tuning: approved skill runs → a scrubbed, validated training set → a job → a model.

Modules, one job each: ``consent`` (who opted in), ``privacy`` (redaction, residual scan,
pseudonyms), ``dataset`` (runs to examples: dedupe, diversity, split), ``validate`` (the
OpenAI chat fine-tuning format, tokens, cost), ``jobs`` (files and fine_tuning.jobs through
the openai SDK), ``switch`` (point a skill at a model; compare two models), ``overrides``
(the admin's per-skill model; the skills layer reads its table itself), ``cli``
(``copilot finetune``).
"""
