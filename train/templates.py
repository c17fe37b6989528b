"""Chat templates written out here: for tokenizers built offline (tests, benchmarks) and for
base checkpoints that ship none (`--template`).

Each marks the assistant's part with `{% generation %}` ... `{% endgeneration %}` (content, tool
calls and the end-of-turn token, as train.encode learns them), so transformers'
`apply_chat_template(..., return_assistant_tokens_mask=True)` and TRL's `assistant_only_loss`
accept them. Each renders tool definitions (`tools=`), assistant `tool_calls` and `tool` results.
"""
from __future__ import annotations

QWEN25_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# One call as JSON text; `arguments` may come as a dict (transformers' form) or as JSON text (OpenAI's).
_CALL_JSON = (
    "{%- set call = tool_call.function if tool_call.function is defined else tool_call %}"
    "{{- '{\"name\": \"' + call.name + '\", \"ARGS\": ' }}"
    "{%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}"
    "{{- '}' }}"
)


def _calls(before: str, after: str, args: str = "arguments") -> str:
    """Each of the message's tool calls as JSON between `before` and `after`, a newline apart
    (and from the content)."""
    return (
        "{%- for tool_call in message.tool_calls or [] %}"
        "{%- if message.content or not loop.first %}{{- '\\n' }}{%- endif %}"
        "{{- '" + before + "' }}" + _CALL_JSON.replace("ARGS", args) + "{{- '" + after + "' }}"
        "{%- endfor %}"
    )


def chatml_template(default_system: str | None = None) -> str:
    """Qwen2.5-style ChatML: tools in the system turn, calls in <tool_call> tags, tool results
    in a user turn; an optional default system prompt."""
    quoted = default_system.replace("'", "\\'") if default_system else ""
    no_system = "{{- '<|im_start|>system\\n" + quoted + "<|im_end|>\\n' }}" if default_system else ""
    return (
        "{%- if tools %}"
        "{{- '<|im_start|>system\\n' }}"
        "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}"
        + ("{%- else %}{{- '" + quoted + "\\n\\n' }}" if default_system else "")
        + "{%- endif %}"
        "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
        "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
        "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
        "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
        "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": "
        "<args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
        "{%- elif messages[0].role == 'system' %}"
        "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
        "{%- else %}" + no_system + "{%- endif %}"
        "{%- for message in messages %}"
        "{%- if message.role == 'system' and loop.first %}"
        "{%- elif message.role == 'tool' %}"
        "{%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
        "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}"
        "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
        "{%- elif message.role == 'assistant' %}"
        "{{- '<|im_start|>assistant\\n' }}"
        "{%- generation %}{{- message.content }}" + _calls("<tool_call>\\n", "\\n</tool_call>")
        + "{{- '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


_TOOLS_TEXT = (
    "{%- set ns = namespace(text='') %}"
    "{%- if tools %}{%- set ns.text = 'You can call these functions; to call one, answer with JSON '"
    " + '{\"name\": function name, \"ARGS\": an object of its arguments}.\\n' %}"
    "{%- for tool in tools %}{%- set ns.text = ns.text + '\\n' + (tool | tojson) %}{%- endfor %}"
    "{%- set ns.text = ns.text + '\\n\\n' %}{%- endif %}"
    "{%- set tools_text = ns.text %}"
)

# Gemma's turn format; a system prompt (and any tools) go in front of the first user turn (Gemma has
# no system role); tool results are user turns.
GEMMA_TEMPLATE = (
    "{{- bos_token }}" + _TOOLS_TEXT.replace("ARGS", "arguments") +
    "{%- if messages and messages[0].role == 'system' %}"
    "{%- set first_user_prefix = tools_text + messages[0].content + '\\n\\n' %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set first_user_prefix = tools_text %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if message.role == 'assistant' %}"
    "{{- '<start_of_turn>model\\n' }}"
    "{%- generation %}{{- message.content }}" + _calls("", "") + "{{- '<end_of_turn>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<start_of_turn>user\\n' + (first_user_prefix if loop.first else '') + message.content"
    " + '<end_of_turn>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"
)

# Llama 3 headers; tools go in a system turn (before the record's own system prompt), calls are
# Llama 3.1's {"name", "parameters"} JSON, tool results the `ipython` role.
LLAMA3_TEMPLATE = (
    "{{- bos_token }}" + _TOOLS_TEXT.replace("ARGS", "parameters") +
    "{%- if tools_text and messages[0].role != 'system' %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + tools_text | trim + '<|eot_id|>' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- generation %}{{- message.content }}" + _calls("", "", "parameters") + "{{- '<|eot_id|>' }}"
    "{%- endgeneration %}"
    "{%- else %}"
    "{{- '<|start_header_id|>' + ('ipython' if message.role == 'tool' else message.role) + '<|end_header_id|>\\n\\n'"
    " + (tools_text if message.role == 'system' and loop.first else '') + message.content + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# name -> (template, special tokens it needs as single tokens of the vocabulary)
BUILTIN_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "chatml": (chatml_template(), ("<|im_start|>", "<|im_end|>")),
    "gemma": (GEMMA_TEMPLATE, ("<start_of_turn>", "<end_of_turn>")),
    "llama3": (LLAMA3_TEMPLATE, ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
}


def template_for_model_type(model_type: str | None) -> str | None:
    """The built-in template a model family uses, for base checkpoints that ship none."""
    kind = (model_type or "").lower()
    if kind.startswith("gemma"):
        return "gemma"
    if kind.startswith("llama"):
        return "llama3"
    if kind.startswith("qwen"):
        return "chatml"
    return None
