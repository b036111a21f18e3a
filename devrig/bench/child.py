"""One cold start: import a handler, answer one event, say so. Run in a fresh process."""

import importlib.util
import json
import os
import sys


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def main() -> None:
    path, attribute, event_file = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("handler_module", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(event_file) as handle:
        event = json.load(handle)
    getattr(module, attribute)(event, Context())
    sys.stdout.write("answered\n")
    sys.stdout.flush()
    os._exit(0)


main()
