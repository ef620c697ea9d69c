"""POST /v1/tools/http: an outbound HTTP call for an agent, made only when the Policy bound to the
pool (or the Policy named) allows it (llorch.dataplane.tools)."""

from __future__ import annotations

from typing import Annotated, Any

import falcon
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llorch.api.context import AppContext
from llorch.api.tasks import NAME, read_json
from llorch.dataplane.tools import ToolAnswer, ToolCall
from llorch.resources.policy import HttpMethod
from llorch.runtime.outbound.fetch import OutboundRequest

HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
HeaderValue = Annotated[str, Field(max_length=8192, pattern=r"^[^\r\n\x00]*$")]


def _request_rules(schema: dict[str, Any]) -> None:
    """`_one_decider` in JSON Schema, so that the document calls valid only what the server takes."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in ("pool", "policy")
    ]


# What the document promises is a well-formed URL: http(s), a host name (an address, or a name
# that is one, is the guard's to judge), an optional port and path. The guard takes more (other
# forms it refuses by policy) and refuses less well-formed ones with 400.
_WELL_FORMED_URL = r"^https?://([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(:[1-9][0-9]{0,3})?(/[^\s\\]*)?$"


class HttpToolRequest(BaseModel):
    """The body of POST /v1/tools/http; names follow the wire contract (snake_case)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_request_rules)

    pool: str | None = Field(
        default=None, min_length=1, max_length=63, description="The Policy bound to it decides."
    )
    policy: str | None = Field(default=None, min_length=1, max_length=63, description="This Policy decides.")
    method: HttpMethod = "GET"
    url: str = Field(min_length=1, max_length=8192, json_schema_extra={"pattern": _WELL_FORMED_URL})
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        max_length=64,
        # Every name must match: without this the document would let other names hold anything.
        json_schema_extra={"additionalProperties": False},
    )
    body: str | None = Field(default=None, description="Sent as UTF-8.")
    task_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NAME, description="Named in the audit trail."
    )
    session_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NAME, description="Named in the audit trail."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_decider(self) -> HttpToolRequest:
        if (self.pool is None) == (self.policy is None):
            raise ValueError("give exactly one of pool or policy")
        return self

    def call(self) -> ToolCall:
        return ToolCall(
            OutboundRequest(
                method=self.method,
                url=self.url,
                headers=tuple(self.headers.items()),
                body=(self.body or "").encode("utf-8"),
            ),
            pool=self.pool,
            policy=self.policy,
            task_id=self.task_id,
            session_id=self.session_id,
        )


def answer(result: ToolAnswer) -> dict[str, object]:
    headers: dict[str, str] = {}
    for name, value in result.headers:
        # Repeated headers folded as RFC 9110 section 5.3 allows (Set-Cookie is redacted anyway).
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return {
        "status": result.status,
        "headers": headers,
        "body": result.body,
        "truncated": result.truncated,
        "url": result.url,
    }


class HttpToolResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = HttpToolRequest.model_validate(read_json(req))
        resp.media = answer(self._ctx.tools.call(body.call()))


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/tools/http", HttpToolResource(ctx))
