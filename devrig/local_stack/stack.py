"""The whole product on this machine, driven by template.yaml."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from local_stack.cinnox import CinnoxSimulator
from local_stack.cloudformation import (
    ResponseEndpoint,
    StackRecord,
    custom_resource_event,
    run_custom_resource,
    service_timeout,
    stack_id,
)
from local_stack.emulator import CREDENTIALS, MotoServer, Provisioned, choose, provision
from local_stack.gateway import (
    ACCOUNT_BURST_LIMIT,
    ACCOUNT_RATE_LIMIT,
    AccessLogFormat,
    HttpApi,
    Route,
    Throttle,
    TokenBucket,
)
from local_stack.httpserver import check_port
from local_stack.logs import (
    AlarmEvaluation,
    FilterPatternError,
    LogShipper,
    MetricFilter,
    cloudwatch_statistic,
    evaluate_alarm,
    log_group_name,
)
from local_stack.runtime import FunctionError, FunctionHost, FunctionSpec
from local_stack.schedules import Schedule, ScheduleError
from local_stack.streams import MappingConfig, QueueMapping, StreamMapping
from local_stack.template import REGION, ROOT, Template, resolve
from local_stack.widget import FUNCTION as WIDGET_FUNCTION
from local_stack.widget import WidgetServer

# nosemgrep: hardcoded-secret  # the secret's name in the local stack, not its value
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
    # Seconds the HTTP API answers 404 after it starts, as API Gateway does until the $default
    # stage's asynchronous auto-deployment lands: the product must not race it.
    api_deploy_delay: float = 1.0
    # Another stack's CINNOX simulator, to deploy a second stack against the same CINNOX account.
    cinnox: CinnoxSimulator | None = None
    # Poll the stream and queue event sources and run the ScheduleV2 schedules. `make bench` turns them
    # off: it invokes handlers itself, and the pollers' threads would take the GIL from what it times.
    event_sources: bool = True
    # Local only: every enabled ScheduleV2 schedule runs every this many seconds instead of its rate
    # (`make local LOCAL_ARGS="--schedule-every 30"`), to see an hourly schedule run. None: its rate.
    schedule_every: float | None = None
    # The delivery widget's page (local_stack/widget.py): DeliveryWidgetFunction as the dashboard draws it.
    widget_port: int = 0


@dataclass
class CustomResource:
    """A custom resource as CloudFormation holds it: the properties last accepted and its physical id."""

    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    physical_id: str


@dataclass(frozen=True)
class ResourceEvent:
    """One custom resource event of the stack's life, and what CloudFormation made of its answer."""

    stack_status: str  # while the event ran (what DescribeStacks told the function)
    request_type: str
    logical_id: str
    physical_id: str | None  # the PhysicalResourceId sent
    status: str  # the answer, as CloudFormation judged it
    answered_physical_id: str | None
    reason: str
    event: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as sent


def _next_second() -> datetime:
    """Now, rounded up: the emulator keeps whole seconds, so a window ending now would miss this second's data."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)


def fresh_log_dir(log_dir: Path) -> None:
    """The run's log folder, emptied of an earlier run's logs: each function's file is named after its physical
    name, new each run, so they would pile up and the folder would no longer say which are this run's."""
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink(missing_ok=True)


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
        self.widget: WidgetServer | None = None
        self.log_shippers: dict[str, LogShipper] = {}  # by log group name
        self._alarm_states: dict[str, str] = {}
        self.mappings: list[StreamMapping] = []
        self.queue_mappings: list[QueueMapping] = []
        self.schedules: list[Schedule] = []
        self.resources: dict[str, CustomResource] = {}  # the custom resources that exist
        self.events: list[ResourceEvent] = []
        self.record = StackRecord(options.stack_name, stack_id(options.stack_name), "CREATE_IN_PROGRESS")
        self.record.parameters = self._parameters  # what provision() gave the template's parameters
        self._log_files: dict[str, Any] = {}
        self._log_lock = threading.Lock()

    # --- start -----------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        fresh_log_dir(options.log_dir)
        ports = (options.api_port, "HTTP API"), (options.cinnox_port, "CINNOX simulator")
        for port, what in (*ports, (options.widget_port, "widget page")):
            if port:
                check_port(port, what)
        self._start_emulator()
        token = "local-" + secrets.token_urlsafe(24)
        if options.cinnox is not None:
            options.cinnox.add_app(options.app_id, token)
            token = options.cinnox.tokens[options.app_id]
        self.cinnox = options.cinnox or CinnoxSimulator(options.app_id, token, port=options.cinnox_port)
        self.cloudformation = ResponseEndpoint()
        self.record.outputs = self._outputs
        self.cloudformation.register(self.record)
        assert self.aws is not None
        self._put_app_token(token)
        parameters = {
            "CinnoxBaseUrl": self.cinnox.base_url,
            "CinnoxAppId": options.app_id,
            "CinnoxAppTokenSecret": self.app_token_secret,
            **options.parameters,
        }
        self._status("creating the template's resources in the emulator")
        self.provisioned = provision(self.template, parameters, self.aws, options.stack_name)
        self._start_apis()
        self._start_functions()
        self._start_widget()
        self._start_mappings()
        self._create_custom_resources()

    @property
    def app_token_secret(self) -> str:
        """The AppToken secret's name: one per stack, so stacks sharing an emulator keep their own."""
        if self.options.stack_name == StackOptions.stack_name:
            return APP_TOKEN_SECRET
        return f"cinnox/app-token-{self.options.stack_name}"

    def _put_app_token(self, token: str) -> None:
        """The AppToken secret the template expects to exist (another emulator may have it already)."""
        assert self.aws is not None
        secretsmanager = self.aws.client("secretsmanager")
        try:
            secretsmanager.create_secret(Name=self.app_token_secret, SecretString=token)
        except secretsmanager.exceptions.ResourceExistsException:
            secretsmanager.put_secret_value(SecretId=self.app_token_secret, SecretString=token)

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
        account = TokenBucket(Throttle(ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT))  # one account: shared
        for index, (api, api_routes) in enumerate(routes.items()):
            port = self.options.api_port if index == 0 else 0
            properties = self.properties(api) if api in self.template.body["Resources"] else {}
            try:
                throttle = Throttle.from_settings(properties.get("DefaultRouteSettings"))
                route_throttles = {
                    key: limits
                    for key, settings in (properties.get("RouteSettings") or {}).items()
                    if (limits := Throttle.from_settings(settings)) is not None
                }
                access_log = self._access_log(api, properties.get("AccessLogSettings"))
            except (ValueError, FilterPatternError) as error:
                raise StackError(f"{api}: {error}") from None
            self.apis[api] = HttpApi(
                api_routes,
                self.invoke,
                api_id=self.provisioned.refs[api],
                port=port,
                deploy_delay=self.options.api_deploy_delay,
                throttle=throttle,
                route_throttles=route_throttles,
                account=account,
                access_log=access_log,
            )
            if throttle is not None:
                self._status(f"{api}: {throttle.rate:g} requests/s, burst {throttle.burst} per route (429 beyond)")

    def _access_log(
        self, api: str, settings: dict[str, Any] | None
    ) -> tuple[AccessLogFormat, Callable[[str, int], None]] | None:
        """The Format and a shipper to the log group of an API's AccessLogSettings, with its metric filters."""
        if not settings:
            return None
        access_format = AccessLogFormat(str(settings["Format"]))
        group = log_group_name(str(settings["DestinationArn"]))
        shipper = self.log_shippers.get(group)
        if shipper is None:
            assert self.aws is not None
            filters = [f for f in self.metric_filters() if f.log_group == group]
            shipper = LogShipper(
                self.aws.client("logs"), self.aws.client("cloudwatch"), group, f"{api}-$default", filters
            )
            self.log_shippers[group] = shipper
        return access_format, shipper.put

    def metric_filters(self) -> list[MetricFilter]:
        """The template's AWS::Logs::MetricFilter resources, resolved against this stack."""
        conditions = self.template.conditions(self.provisioned.refs)
        return [
            MetricFilter.from_properties(name, self.properties(name))
            for name, resource in self.template.resources_of_type("AWS::Logs::MetricFilter").items()
            if "Condition" not in resource or conditions[resource["Condition"]]
        ]

    def flush_logs(self) -> None:
        """Ship every buffered log line now, and the metric data the metric filters take from them."""
        for shipper in self.log_shippers.values():
            shipper.flush()

    def alarm_state(self, logical_id: str, now: datetime | None = None) -> AlarmEvaluation:
        """The state CloudWatch would give one of the template's alarms now, from the emulator's metrics
        (flush_logs first for the latest access log lines). Metric math alarms are refused."""
        assert self.aws is not None
        properties = self.properties(logical_id)
        evaluation = evaluate_alarm(
            logical_id,
            properties,
            cloudwatch_statistic(self.aws.client("cloudwatch"), properties),
            now or _next_second(),
            self._alarm_states.get(logical_id, "INSUFFICIENT_DATA"),
        )
        self._alarm_states[logical_id] = evaluation.state
        return evaluation

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

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties as CloudFormation hands them over: Fn::If chosen, then resolved."""
        conditions = self.template.conditions(self.provisioned.refs)
        chosen = choose(self.template.resource(logical_id).get("Properties", {}), conditions)
        resolved: dict[str, Any] = self.resolve(chosen)
        return resolved

    def _start_functions(self) -> None:
        for name in self.template.resources_of_type("AWS::Serverless::Function"):
            properties = self.template.function(name)
            layers = tuple(
                ROOT / self.template.resource(layer["Ref"])["Properties"]["ContentUri"]
                for layer in properties.get("Layers", [])
            )
            environment = {k: str(v) for k, v in self.resolve(properties["Environment"]["Variables"]).items()}
            environment.update({"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS})
            assert self.cloudformation is not None
            # DescribeStacks (the stack's status during rollbacks) comes from the local stand-in.
            environment["AWS_ENDPOINT_URL_CLOUDFORMATION"] = self.cloudformation.base_url
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

    def _start_widget(self) -> None:
        """The delivery widget's page, which invokes the widget function as CloudWatch does (local_stack/widget.py)."""
        if WIDGET_FUNCTION in self.hosts:
            self.widget = WidgetServer(functools.partial(self.invoke, WIDGET_FUNCTION), self.options.widget_port)
            self._status(f"delivery widget at {self.widget.url}")

    def _function_log(self, function: str, line: str) -> None:
        with self._log_lock:
            handle = self._log_files.get(function)
            if handle is None:
                handle = self._log_files[function] = (self.options.log_dir / f"{function}.log").open("a")
            handle.write(line + "\n")
            handle.flush()

    def _start_mappings(self) -> None:
        if not self.options.event_sources:
            return
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
                        functools.partial(self.invoke, name),
                        self.aws,
                        log=functools.partial(self._function_log, name),
                    )
                    queue.start()
                    self.queue_mappings.append(queue)
                if event["Type"] != "DynamoDB":
                    continue
                config = MappingConfig.from_properties(self.resolve(event["Properties"]), queue_urls)
                mapping = StreamMapping(
                    config,
                    functools.partial(self.invoke, name),
                    self.aws,
                    log=functools.partial(self._function_log, name),
                    function=name,
                )
                mapping.start()
                self.mappings.append(mapping)
        self._start_schedules()

    def _start_schedules(self) -> None:
        """Each ScheduleV2 event whose State is ENABLED: its function invoked at once, then on its rate
        (local_stack/schedules.py says how close to EventBridge Scheduler that is)."""
        conditions = self.template.conditions(self.provisioned.refs)
        for name, resource in self.template.resources_of_type("AWS::Serverless::Function").items():
            for event_name, event in resource["Properties"].get("Events", {}).items():
                if event["Type"] != "ScheduleV2":
                    continue
                properties = self.resolve(choose(event.get("Properties", {}), conditions))
                try:
                    schedule = Schedule.from_properties(
                        name,
                        event_name,
                        properties,
                        self.invoke,
                        every=self.options.schedule_every,
                        log=functools.partial(self._function_log, name),
                    )
                except ScheduleError as error:
                    raise StackError(str(error)) from None
                if schedule is None:
                    self._status(f"{name}: schedule {event_name} ({properties.get('ScheduleExpression')}) is DISABLED")
                    continue
                here = f", every {schedule.period:g} s here" if self.options.schedule_every else ""
                self._status(f"{name}: schedule {event_name}, {schedule.expression}{here} (first run now)")
                schedule.start()
                self.schedules.append(schedule)

    def schedule(self, function: str) -> Schedule:
        """The running schedule of a function (a KeyError when it has none, or it is DISABLED)."""
        for schedule in self.schedules:
            if schedule.function == function:
                return schedule
        raise KeyError(f"{function} has no enabled ScheduleV2 schedule running in this stack")

    def configure_function(self, function: str, variables: dict[str, str]) -> None:
        """Set environment variables of a function as Lambda's UpdateFunctionConfiguration does: invocations
        from now on run in fresh execution environments that have them. For local-only settings (the demo's
        clock offset); a scheduled run under way finishes on the old environment first."""
        old = self.hosts[function]
        spec = dataclasses.replace(old.spec, environment={**old.spec.environment, **variables})
        host = FunctionHost(spec, concurrency=self.options.concurrency.get(function, 1), log=self._function_log)
        host.start()
        with contextlib.ExitStack() as held:
            for schedule in self.schedules:
                if schedule.function == function:
                    held.enter_context(schedule.lock)
            self.hosts[function] = host
        old.close()

    # --- custom resources ------------------------------------------------------

    def _invoke_async(self, function: str) -> Callable[[dict[str, Any]], None]:
        def invoke(event: dict[str, Any]) -> None:
            def run() -> None:
                try:
                    self.hosts[function].invoke(event)
                except FunctionError as error:
                    # CloudFormation hears nothing of it: it waits for the resource's ServiceTimeout.
                    self._function_log(function, f"[local stack] custom resource invocation failed: {error}")
                    self._status(f"{function} failed ({error}); CloudFormation waits until the ServiceTimeout")

            threading.Thread(target=run, daemon=True).start()

        return invoke

    def _function_for(self, service_token: str) -> str:
        for key, value in self.provisioned.attrs.items():
            if key.endswith(".Arn") and value == service_token and key.split(".")[0] in self.hosts:
                return key.split(".")[0]
        raise StackError(f"no function of the template has the ServiceToken {service_token}")

    @property
    def stack_status(self) -> str:
        return self.record.status

    def _custom_resource_ids(self) -> list[str]:
        """The template's custom resources that exist with the stack's parameters: a resource whose
        Condition is false is not created (and is deleted when an update makes it false)."""
        conditions = self.template.conditions(self.provisioned.refs)
        return [
            name
            for name, resource in self.template.body["Resources"].items()
            if (resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource")
            and ("Condition" not in resource or conditions[resource["Condition"]])
        ]

    def _send(
        self,
        request_type: str,
        name: str,
        properties: dict[str, Any],
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One event, as CloudFormation sends it; the answer as CloudFormation judges it."""
        assert self.cloudformation is not None
        function = self._function_for(properties["ServiceToken"])
        request_id = str(uuid.uuid4())
        event = custom_resource_event(
            request_type,
            name,
            self.template.resource(name)["Type"],
            properties,
            self.cloudformation.response_url(request_id),
            physical_id,
            old_properties,
            stack=self.record.stack_id,
            request_id=request_id,
        )
        try:
            timeout = service_timeout(properties)
        except ValueError as error:  # CloudFormation refuses such a template before any event
            raise StackError(f"{name}: {error}") from None
        self._status(f"{self.record.status}: {request_type} {name}")
        answer = run_custom_resource(self._invoke_async(function), self.cloudformation, event, timeout)
        self.events.append(
            ResourceEvent(
                self.record.status,
                request_type,
                name,
                physical_id,
                str(answer["Status"]),
                answer.get("PhysicalResourceId"),
                str(answer.get("Reason", "")),
                event,
            )
        )
        self._status(f"{name}: {answer['Status']}")
        return answer

    def _placeholder_id(self, name: str) -> str:
        # A Create that gave no usable id still gets a Delete on rollback, for an id CloudFormation makes.
        suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
        return f"{self.record.name}-{name}-{suffix}"

    def _create_custom_resources(self) -> None:
        self.record.status = "CREATE_IN_PROGRESS"
        for name in self._custom_resource_ids():
            properties = self.resolve(self.template.resource(name)["Properties"])
            answer = self._send("Create", name, properties)
            if answer["Status"] == "SUCCESS":
                self.resources[name] = CustomResource(
                    name, self.template.resource(name)["Type"], properties, answer["PhysicalResourceId"]
                )
                continue
            # "Custom resources": the rollback deletes the failed resource, for the id its Create returned.
            self.record.status = "ROLLBACK_IN_PROGRESS"
            failed = CustomResource(
                name,
                self.template.resource(name)["Type"],
                properties,
                answer.get("PhysicalResourceId") or self._placeholder_id(name),
            )
            ok = self._delete_all([failed, *reversed(self.resources.values())])
            self.resources.clear()
            self.record.status = "ROLLBACK_COMPLETE" if ok else "ROLLBACK_FAILED"
            raise StackError(f"{name} failed: {answer.get('Reason')} (stack {self.record.status})")
        self.record.status = "CREATE_COMPLETE"

    def _delete_all(self, resources: list[CustomResource]) -> bool:
        ok = True
        for resource in resources:
            answer = self._send("Delete", resource.logical_id, resource.properties, resource.physical_id)
            if answer["Status"] == "SUCCESS":
                self.resources.pop(resource.logical_id, None)
            else:
                ok = False
        return ok

    def update(self, parameters: dict[str, str]) -> str:
        """A stack update with new parameter values, as CloudFormation runs it for the custom
        resources: Update events (a Create for one whose Condition became true), then a cleanup Delete
        of replaced ids and of resources whose Condition became false, or, when an event fails,
        rollback Updates back to the old properties and a Delete of what it created. Returns the
        final stack status.

        Only the custom resources see the new values: the rest keeps what start() made.
        """
        if self.record.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"):
            raise StackError(f"the stack cannot be updated in {self.record.status}")
        unknown = set(parameters) - set(self.template.body["Parameters"])
        if unknown:
            raise StackError(f"the template has no parameter {', '.join(sorted(unknown))}")
        previous = {name: self.provisioned.refs[name] for name in parameters}
        self.provisioned.refs.update(parameters)
        self.record.status = "UPDATE_IN_PROGRESS"
        done: list[tuple[CustomResource, CustomResource]] = []  # (before, after), in order
        wanted = self._custom_resource_ids()
        removed = [resource for name, resource in self.resources.items() if name not in wanted]
        for name, before in list(self.resources.items()):
            if name not in wanted:
                continue
            properties = self.resolve(self.template.resource(name)["Properties"])
            if properties == before.properties:
                continue
            answer = self._send("Update", name, properties, before.physical_id, before.properties)
            if answer["Status"] != "SUCCESS":
                self.provisioned.refs.update(previous)
                attempted = CustomResource(name, before.resource_type, properties, before.physical_id)
                return self._roll_back_update([*done, (before, attempted)])
            after = CustomResource(name, before.resource_type, properties, answer["PhysicalResourceId"])
            self.resources[name] = after
            done.append((before, after))
        created: list[CustomResource] = []
        for name in (name for name in wanted if name not in self.resources):
            properties = self.resolve(self.template.resource(name)["Properties"])
            answer = self._send("Create", name, properties)
            made = CustomResource(
                name,
                self.template.resource(name)["Type"],
                properties,
                answer.get("PhysicalResourceId") or self._placeholder_id(name),
            )
            if answer["Status"] != "SUCCESS":
                self.provisioned.refs.update(previous)
                return self._roll_back_update(done, [*created, made])
            self.resources[name] = made
            created.append(made)
        self.options.parameters.update(parameters)
        replaced = [before for before, after in done if before.physical_id != after.physical_id]
        if replaced or removed:
            # A new physical id is a replacement: the old one is deleted, with its old properties;
            # so is a resource the template no longer has (its Condition is false now).
            self.record.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
            for before in replaced:
                self._send("Delete", before.logical_id, before.properties, before.physical_id)
            for gone in removed:
                self._send("Delete", gone.logical_id, gone.properties, gone.physical_id)
                self.resources.pop(gone.logical_id, None)
        self.record.status = "UPDATE_COMPLETE"
        return self.record.status

    def _roll_back_update(
        self, done: list[tuple[CustomResource, CustomResource]], created: list[CustomResource] | None = None
    ) -> str:
        self.record.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        ok = True
        replacements = list(reversed(created or []))  # created by the update: the rollback deletes them
        for made in replacements:
            self.resources.pop(made.logical_id, None)
        for before, after in reversed(done):
            if before.physical_id != after.physical_id:
                replacements.append(after)  # the old resource still exists: the new one goes
                self.resources[before.logical_id] = before
                continue
            # Back to the old properties: ResourceProperties old, OldResourceProperties the new ones.
            answer = self._send("Update", before.logical_id, before.properties, before.physical_id, after.properties)
            if answer["Status"] == "SUCCESS":
                self.resources[before.logical_id] = before
            else:
                ok = False
        if not ok:
            self.record.status = "UPDATE_ROLLBACK_FAILED"
            return self.record.status
        if replacements:
            self.record.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            for after in replacements:
                self._send("Delete", after.logical_id, after.properties, after.physical_id)
        self.record.status = "UPDATE_ROLLBACK_COMPLETE"
        return self.record.status

    def delete(self) -> list[dict[str, Any]]:
        """A stack deletion: a Delete for each custom resource that exists, newest first."""
        answers: list[dict[str, Any]] = []
        if self.record.status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
            self.record.status = "DELETE_COMPLETE"  # nothing left to delete
            return answers
        self.record.status = "DELETE_IN_PROGRESS"
        for resource in reversed(list(self.resources.values())):
            answer = self._send("Delete", resource.logical_id, resource.properties, resource.physical_id)
            if answer["Status"] == "SUCCESS":
                del self.resources[resource.logical_id]
            answers.append(answer)
        self.record.status = "DELETE_FAILED" if self.resources else "DELETE_COMPLETE"
        return answers

    def _parameters(self) -> list[tuple[str, str]]:
        """The template's parameters as this stack has them (a NoEcho one as CloudFormation shows it: ****)."""
        declared = self.template.body.get("Parameters", {})
        return [
            (name, "****" if declared[name].get("NoEcho") else str(self.provisioned.refs[name]))
            for name in declared
            if name in self.provisioned.refs
        ]

    def _outputs(self) -> list[tuple[str, str, str]]:
        found = []
        for name, output in self.template.body.get("Outputs", {}).items():
            try:
                found.append((name, self.output(name), str(output.get("Description", ""))))
            except KeyError:
                continue  # a resource the local stack does not make
        return found

    # --- using it ----------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.hosts[function].invoke(event)

    def output(self, name: str) -> str:
        return str(self.resolve(self.template.body["Outputs"][name]["Value"]))

    def secret(self, logical_id: str) -> str:
        return self.provisioned.secret_values[logical_id]

    def client_environment(self) -> dict[str, str]:
        """What an AWS client outside needs to use this stack: `cinnox-sms --stack NAME` included."""
        assert self.cloudformation is not None
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            # The local stack, not moto, plays CloudFormation (DescribeStacks with the outputs).
            "AWS_ENDPOINT_URL_CLOUDFORMATION": self.cloudformation.base_url,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
        }

    # --- stop ------------------------------------------------------------------

    def stop(self) -> list[dict[str, Any]]:
        """Delete the custom resources (as a stack deletion would), then stop everything started."""
        answers: list[dict[str, Any]] = []
        for schedule in self.schedules:
            schedule.stop()  # no new run while the stack is deleted
        try:
            if self.cloudformation is not None and self.hosts and self.resources:
                answers = self.delete()
        finally:
            for mapping in self.mappings:
                mapping.close()
            for queue in self.queue_mappings:
                queue.close()
            for api in self.apis.values():
                api.close()
            if self.widget is not None:
                self.widget.close()
            for shipper in self.log_shippers.values():
                shipper.close()  # ships what is left while the emulator still runs
            for host in self.hosts.values():
                host.close()  # a scheduled run under way fails now
            for schedule in self.schedules:
                schedule.close()
            shared = self.options.cinnox
            for closeable in (self.cinnox, self.cloudformation, self.moto):
                if closeable is not None and closeable is not shared:
                    closeable.close()
            for handle in self._log_files.values():
                handle.close()
        return answers
