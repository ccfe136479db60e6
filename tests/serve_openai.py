"""The `openai` package, as programs call a local model, against `latentgpu serve`
(tests/serve.rs runs it): a chat completion whole and streamed gives the reply transformers gives
(tests/fixtures/chat/expected.json's first turn), /v1/models lists the model, usage counts add up,
and a bad request raises the package's BadRequestError.

    python tests/serve_openai.py http://127.0.0.1:PORT/v1 tests/fixtures/chat/expected.json
"""
import json
import sys

import openai


def main():
    base, expected_path = sys.argv[1], sys.argv[2]
    expected = json.load(open(expected_path))
    turn = expected["turns"][0]
    client = openai.OpenAI(base_url=base, api_key="unused")
    messages = [{"role": "system", "content": expected["system"]}, {"role": "user", "content": turn["user"]}]
    assert [m.id for m in client.models.list().data], "no model listed"
    r = client.chat.completions.create(model="any", messages=messages, max_tokens=expected["max_tokens"],
                                       temperature=0)
    assert r.choices[0].message.content == turn["text"], r
    assert r.usage.completion_tokens == len(turn["ids"]), r.usage
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    stream = client.chat.completions.create(model="any", messages=messages, max_tokens=expected["max_tokens"],
                                            temperature=0, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == turn["text"], text
    try:
        client.chat.completions.create(model="any", messages=messages, n=2)
        raise AssertionError("n=2 was accepted")
    except openai.BadRequestError as e:
        assert "'n'" in str(e), e
    print("4 passed, 0 failed")


if __name__ == "__main__":
    main()
