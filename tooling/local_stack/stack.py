"""The whole product on this machine, driven by template.yaml."""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_stack.cinnox import CinnoxSimulator
from local_stack.cloudformation import ResponseEndpoint, custom_resource_event, run_custom_resource
from local_stack.emulator import CREDENTIALS, MotoServer, Provisioned, provision
from local_stack.gateway import HttpApi, Route
from local_stack.httpserver import check_port
from local_stack.runtime import FunctionError, FunctionHost, FunctionSpec
from local_stack.streams import MappingConfig, QueueMapping, StreamMapping
from local_stack.template import REGION, ROOT, Template, resolve

APP_TOKEN_SECRET = "cinnox/app-token-local"  # noqa: S105  # nosec B105  # a name, not a value


class StackError(RuntimeError):
    pass


@dataclass
class StackOptions:
    api_port: int = 0
    emulator_port: int = 0
    cinnox_port: int = 0
    endpoint_url: str | None = None  # another emulator, instead of starting moto
    app_id: str = "demo-app-0001"
    stack_name: str = "cinnox-sms-local"
    concurrency: dict[str, int] = field(default_factory=dict)  # environments per function (default 1)
    log_dir: Path = ROOT / ".local-stack" / "logs"
    parameters: dict[str, str] = field(default_factory=dict)


class LocalStack:
    def __init__(
        self, template: Template, options: StackOptions, status: Callable[[str], None] = lambda line: None
    ) -> None:
        self.template = template
        self.options = options
        self._status = status
        self.moto: MotoServer | None = None
        self.endpoint = ""
        self.aws: boto3.Session | None = None
        self.cinnox: CinnoxSimulator | None = None
        self.cloudformation: ResponseEndpoint | None = None
        self.provisioned = Provisioned()
        self.hosts: dict[str, FunctionHost] = {}
        self.apis: dict[str, HttpApi] = {}
        self.mappings: list[StreamMapping] = []
        self.queue_mappings: list[QueueMapping] = []
        self._custom_resources: list[tuple[str, dict[str, Any], str]] = []
        self._log_files: dict[str, Any] = {}
        self._log_lock = threading.Lock()

    # --- start -----------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        options.log_dir.mkdir(parents=True, exist_ok=True)
        for port, what in ((options.api_port, "HTTP API"), (options.cinnox_port, "CINNOX simulator")):
            if port:
                check_port(port, what)
        self._start_emulator()
        token = "local-" + secrets.token_urlsafe(24)
        self.cinnox = CinnoxSimulator(options.app_id, token, port=options.cinnox_port)
        self.cloudformation = ResponseEndpoint()
        assert self.aws is not None
        self._put_app_token(token)
        parameters = {
            "CinnoxBaseUrl": self.cinnox.base_url,
            "CinnoxAppId": options.app_id,
            "CinnoxAppTokenSecret": APP_TOKEN_SECRET,
            **options.parameters,
        }
        self._status("creating the template's resources in the emulator")
        self.provisioned = provision(self.template, parameters, self.aws, options.stack_name)
        self._start_apis()
        self._start_functions()
        self._start_mappings()
        self._create_custom_resources()

    def _put_app_token(self, token: str) -> None:
        """The AppToken secret the template expects to exist (another emulator may have it already)."""
        assert self.aws is not None
        secretsmanager = self.aws.client("secretsmanager")
        try:
            secretsmanager.create_secret(Name=APP_TOKEN_SECRET, SecretString=token)
        except secretsmanager.exceptions.ResourceExistsException:
            secretsmanager.put_secret_value(SecretId=APP_TOKEN_SECRET, SecretString=token)

    def _start_emulator(self) -> None:
        options = self.options
        if options.endpoint_url:
            self.endpoint = options.endpoint_url
            self._status(f"using the AWS emulator at {self.endpoint}")
        else:
            self.moto = MotoServer(options.emulator_port, log_file=options.log_dir / "moto.log")
            self._status("starting moto's server")
            self.moto.start()
            self.endpoint = self.moto.endpoint
        # Every SDK client here and in the functions goes to the emulator.
        os.environ.update({"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
        self.aws = boto3.Session(region_name=REGION)

    def _start_apis(self) -> None:
        routes: dict[str, list[Route]] = {}
        for api, method, path, function in self.template.http_routes():
            routes.setdefault(api, []).append(Route(method, path, function))
        for index, (api, api_routes) in enumerate(routes.items()):
            port = self.options.api_port if index == 0 else 0
            self.apis[api] = HttpApi(api_routes, self.invoke, api_id=self.provisioned.refs[api], port=port)

    def localize(self, value: Any) -> Any:
        """Point URLs of the template's APIs at the local gateways."""
        if isinstance(value, str):
            for api, gateway in self.apis.items():
                value = value.replace(
                    f"https://{self.provisioned.refs[api]}.execute-api.{REGION}.amazonaws.com", gateway.url
                )
            return value
        if isinstance(value, dict):
            return {k: self.localize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.localize(v) for v in value]
        return value

    def resolve(self, value: Any) -> Any:
        return self.localize(resolve(value, self.provisioned.refs, self.provisioned.attrs))

    def _start_functions(self) -> None:
        for name in self.template.resources_of_type("AWS::Serverless::Function"):
            properties = self.template.function(name)
            layers = tuple(
                ROOT / self.template.resource(layer["Ref"])["Properties"]["ContentUri"]
                for layer in properties.get("Layers", [])
            )
            environment = {k: str(v) for k, v in self.resolve(properties["Environment"]["Variables"]).items()}
            environment.update({"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS})
            spec = FunctionSpec(
                name=self.provisioned.refs[name],
                code_dir=ROOT / properties["CodeUri"],
                handler=properties["Handler"],
                layer_dirs=layers,
                environment=environment,
                timeout_seconds=float(properties.get("Timeout", 3)),
                memory_mb=int(properties.get("MemorySize", 128)),
            )
            host = FunctionHost(spec, concurrency=self.options.concurrency.get(name, 1), log=self._function_log)
            host.start()
            self.hosts[name] = host
        self._status(f"started {len(self.hosts)} functions, each in its own runtime process")

    def _function_log(self, function: str, line: str) -> None:
        with self._log_lock:
            handle = self._log_files.get(function)
            if handle is None:
                handle = self._log_files[function] = (self.options.log_dir / f"{function}.log").open("a")
            handle.write(line + "\n")
            handle.flush()

    def _start_mappings(self) -> None:
        queue_urls = {
            self.provisioned.attrs[key]: self.provisioned.attrs[key.replace(".Arn", ".QueueUrl")]
            for key in self.provisioned.attrs
            if key.endswith(".Arn") and key.replace(".Arn", ".QueueUrl") in self.provisioned.attrs
        }
        assert self.aws is not None
        for name, resource in self.template.resources_of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "SQS":
                    queue = QueueMapping.from_properties(
                        self.resolve(event["Properties"]),
                        queue_urls,
                        self.hosts[name].invoke,
                        self.aws,
                        log=functools.partial(self._function_log, name),
                    )
                    queue.start()
                    self.queue_mappings.append(queue)
                if event["Type"] != "DynamoDB":
                    continue
                config = MappingConfig.from_properties(self.resolve(event["Properties"]), queue_urls)
                host = self.hosts[name]
                mapping = StreamMapping(
                    config, host.invoke, self.aws, log=functools.partial(self._function_log, name), function=name
                )
                mapping.start()
                self.mappings.append(mapping)

    # --- custom resources ------------------------------------------------------

    def _invoke_async(self, function: str) -> Callable[[dict[str, Any]], None]:
        def invoke(event: dict[str, Any]) -> None:
            def run() -> None:
                try:
                    self.hosts[function].invoke(event)
                except FunctionError as error:
                    self._function_log(function, f"[local stack] custom resource invocation failed: {error}")

            threading.Thread(target=run, daemon=True).start()

        return invoke

    def _function_for(self, service_token: str) -> str:
        for key, value in self.provisioned.attrs.items():
            if key.endswith(".Arn") and value == service_token and key.split(".")[0] in self.hosts:
                return key.split(".")[0]
        raise StackError(f"no function of the template has the ServiceToken {service_token}")

    def _create_custom_resources(self) -> None:
        assert self.cloudformation is not None
        for name, resource in self.template.body["Resources"].items():
            if not (
                resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource"
            ):
                continue
            properties = self.resolve(resource["Properties"])
            function = self._function_for(properties["ServiceToken"])
            timeout = self.hosts[function].spec.timeout_seconds + 10
            self._status(f"creating {name} ({resource['Type']})")
            event = custom_resource_event("Create", name, resource["Type"], properties, self.cloudformation.url)
            response = run_custom_resource(self._invoke_async(function), self.cloudformation, event, timeout)
            if response["Status"] != "SUCCESS":
                raise StackError(f"{name} failed: {response.get('Reason')}")
            self._custom_resources.append((name, properties, response["PhysicalResourceId"]))

    def _delete_custom_resources(self) -> list[dict[str, Any]]:
        answers = []
        assert self.cloudformation is not None
        for name, properties, physical_id in reversed(self._custom_resources):
            function = self._function_for(properties["ServiceToken"])
            self._status(f"deleting {name}")
            resource_type = self.template.resource(name)["Type"]
            event = custom_resource_event(
                "Delete", name, resource_type, properties, self.cloudformation.url, physical_id=physical_id
            )
            timeout = self.hosts[function].spec.timeout_seconds + 10
            answers.append(run_custom_resource(self._invoke_async(function), self.cloudformation, event, timeout))
        self._custom_resources.clear()
        return answers

    # --- using it ----------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.hosts[function].invoke(event)

    def output(self, name: str) -> str:
        return str(self.resolve(self.template.body["Outputs"][name]["Value"]))

    def secret(self, logical_id: str) -> str:
        return self.provisioned.secret_values[logical_id]

    # --- stop ------------------------------------------------------------------

    def stop(self) -> list[dict[str, Any]]:
        """Delete the custom resources (as a stack deletion would), then stop everything started."""
        answers: list[dict[str, Any]] = []
        try:
            if self.cloudformation is not None and self.hosts:
                answers = self._delete_custom_resources()
        finally:
            for mapping in self.mappings:
                mapping.close()
            for queue in self.queue_mappings:
                queue.close()
            for api in self.apis.values():
                api.close()
            for host in self.hosts.values():
                host.close()
            for closeable in (self.cinnox, self.cloudformation, self.moto):
                if closeable is not None:
                    closeable.close()
            for handle in self._log_files.values():
                handle.close()
        return answers
