"""A compiled path for the hottest list queries: ``messages`` connections without the executor.

A 50-node page of ``messages`` with each node's client and campaign costs
graphql-core and strawberry about 500 field resolutions (``execute_field``,
``complete_value``), most of a request's CPU; PostGraphile answers the same
query by compiling it into SQL. This module does the equivalent for the
operations clients repeat all day:

- a query whose root fields are ``messages(...)`` and ``clients(...)``
  connections (and ``__typename``), each selecting ``totalCount``,
  ``pageInfo { ... }`` and ``edges { cursor node { ... } }``, where a node
  selects scalar and enum fields of ``Message`` (``id`` and ``uuid`` included)
  and its ``client { ... }`` / ``campaign { ... }`` scalar fields, or scalar
  fields of ``Client``; ``__typename`` anywhere, aliases, inline fragments and
  fragment spreads (flattened), ``@include``/``@skip``.

Such an operation is compiled once per document, operation name and values of
the variables its ``@include``/``@skip`` use into a :class:`_Plan`: the columns
to read and, per output key, how to write it (a generated function, see
:class:`_Generator`). Executing it validates the arguments as the resolver
does; ``messages`` reads one statement (page rows, client and campaign columns,
and the exact total when ``totalCount`` is selected; see
:func:`mensajero.services.message.list_message_rows`), ``clients`` the
resolver's own services; then the response dicts are written in one pass,
every value serialized by the schema's own scalar and enum serializers, so the
answer is byte for byte the executor's.

It runs as the schema's last extension, in ``on_execute``: authentication,
parsing, validation and the limits of ``schema/limits.py`` have run exactly as
for any operation, and the result goes through strawberry's error processing
and response encoding as usual. Anything else (other fields, lists such as
``logs``, unknown directives, mutations, subscriptions, introspection) and any
failure (invalid variables or arguments, a bad cursor, a value the serializers
refuse) leaves the operation to the executor untouched, so error answers are
exactly the executor's. ``graphql_compiled_lists = false`` turns it off.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson
from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.utilities import type_from_ast
from prometheus_client import Counter
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.relay import to_base64
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments

from mensajero.repositories.message import ListingColumns
from mensajero.services import client_queries as client_service
from mensajero.services import message as message_service
from mensajero.services.listing import ClientFilter, KeysetPage, MessageFilter, Page, encode_cursor
from mensajero.settings import get_settings

logger = logging.getLogger(__name__)

COMPILED_OPERATIONS = Counter(
    "mensajero_graphql_compiled_operations_total",
    "GraphQL operations answered by the compiled list path (the rest run the executor), by "
    "where: 'execute' (strawberry's pipeline up to execution) or 'endpoint' (an operation "
    "that pipeline already validated, answered from the HTTP endpoint)",
    ["path"],
)

# Documents (query text, operation name) analysed; each keeps its plans per values
# of the variables of its @include/@skip. Bounded like the parse and validation caches.
DOCUMENT_CACHE_SIZE = 1024
PLANS_PER_DOCUMENT = 16
FILTER_CACHE_SIZE = 1024

# The node fields read from a column, by the strawberry field's Python name: the
# ``from_model`` of each type copies these attributes as they are (checked by the
# differential tests). Any other field leaves the operation to the executor.
_MESSAGE_COLUMNS = {
    "uuid": "id",
    "body": "body",
    "subject": "subject",
    "html": "html",
    "template_id": "template_id",
    "content_type": "content_type",
    "channel": "channel",
    "type": "communication_type",
    "direction": "direction",
    "status": "status",
    "recipient": "recipient",
    "country_code": "country_code",
    "provider": "provider",
    "queue_id": "queue_id",
    "metadata": "metadata",
    "segments": "segments",
    "cost": "cost",
    "error_message": "error_message",
    "scheduled_at": "scheduled_at",
    "sent_at": "sent_at",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
_CLIENT_COLUMNS = {
    "uuid": "id",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "phone_e164": "phone_e164",
    "country": "country",
    "metadata": "metadata",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "deleted_at": "deleted_at",
}
_CAMPAIGN_COLUMNS = {
    "uuid": "id",
    "name": "name",
    "description": "description",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
# Clients listed as ORM objects (``clients``): their attributes, by the field's Python name.
_CLIENT_ATTRIBUTES = {**_CLIENT_COLUMNS, "metadata": "metadata_"}
# The root connections compiled, and the type of their nodes.
_CONNECTIONS = {"messages": "Message", "clients": "Client"}
_RELATIONS = {"client": ("Client", _CLIENT_COLUMNS), "campaign": ("Campaign", _CAMPAIGN_COLUMNS)}
_CONNECTION_ARGUMENTS = {"filter", "first", "after", "last", "before"}
_PAGE_INFO_FIELDS = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


class NotCompilable(Exception):
    """The operation (or this request of it) is left to the executor."""


# --- plans ------------------------------------------------------------------------------


@dataclass
class _Columns:
    """Columns of one joined table, in select order; ``id`` first."""

    names: list[str] = field(default_factory=lambda: ["id"])

    def index(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)


@dataclass
class _Node:
    """How to write a node (or a related object) from a row: (key, writer) pairs.

    Writers read the row by position; positions are relative to the table's first
    column and fixed up by ``offset`` once every column is known."""

    writers: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass(eq=False)  # hashed by identity: a key of the converted filters
class _Connection:
    """One root ``messages`` or ``clients`` field: its arguments and how to write its answer."""

    field_node: FieldNode
    field_def: GraphQLField
    entries: list[tuple[str, str, Any]]
    listed: _Columns  # the columns (attributes for clients) of the listed rows
    client: _Columns | None
    campaign: _Columns | None
    with_total: bool
    # The variables the ``filter`` argument uses, which with the document decide its value.
    filter_variables: tuple[str, ...] = ()
    kind: str = "messages"  # the root field: a key of _CONNECTIONS
    columns: ListingColumns | None = None
    write: Callable[..., dict[str, Any]] | None = None


@dataclass
class _Plan:
    entries: list[tuple[str, str, Any]]


@dataclass
class _Document:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    directive_variables: tuple[str, ...]
    operation_names: tuple[str | None, ...]
    plans: OrderedDict[tuple[Any, ...], _Plan | None] = field(default_factory=OrderedDict)


def _named_type(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _leaf_serializer(type_: Any) -> Callable[[Any], Any]:
    """The schema's serializer of a scalar or enum output type, as the executor calls it."""
    named = _named_type(type_)
    if isinstance(named, GraphQLEnumType):
        # The stored strings are the domain enums' values; GraphQL shows their names.
        domain_enum = named.extensions["strawberry-definition"].wrapped_cls
        names = {member.value: named.serialize(member) for member in domain_enum}

        def enum(value: Any) -> Any:
            try:
                return names[value]
            except KeyError:
                raise NotCompilable(f"{named.name} has no value {value!r}") from None

        return enum
    if isinstance(named, GraphQLScalarType):
        serialize = named.serialize
        if named.name == "String":
            return lambda value: value if type(value) is str else serialize(value)
        return serialize
    raise NotCompilable(f"{named} is not a leaf type")


def _variables_in(value: Any) -> list[str]:
    if isinstance(value, VariableNode):
        return [value.name.value]
    if isinstance(value, ListValueNode):
        return [name for item in value.values for name in _variables_in(item)]
    if isinstance(value, ObjectValueNode):
        return [name for item in value.fields for name in _variables_in(item.value)]
    return []


class _Compiler:
    """Builds a :class:`_Plan` for one operation and values of its directive variables."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    # Field collection as graphql-core's collect_fields: merged by response key in
    # order of first appearance, fragments flattened, @skip/@include applied.
    def collect(
        self, type_: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]
    ) -> OrderedDict[str, list[FieldNode]]:
        fields: OrderedDict[str, list[FieldNode]] = OrderedDict()
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._collect(type_, selection_set, fields, visited)
        return fields

    def _collect(
        self,
        type_: GraphQLObjectType,
        selection_set: SelectionSetNode,
        fields: OrderedDict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._matches(selection.type_condition, type_):
                    self._collect(type_, selection.selection_set, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise NotCompilable(f"unknown fragment {name}")
                if self._matches(fragment.type_condition, type_):
                    self._collect(type_, fragment.selection_set, fields, visited)
            else:
                raise NotCompilable(f"unexpected selection {selection.kind}")

    def _matches(self, condition: Any, type_: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        conditional = type_from_ast(self.schema, condition)
        if conditional is type_:
            return True
        if is_abstract_type(conditional):
            return self.schema.is_sub_type(conditional, type_)  # type: ignore[arg-type]
        return False

    def _included(self, node: Any) -> bool:
        included = True
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                raise NotCompilable(f"directive @{name}")
            (argument,) = directive.arguments
            value = argument.value
            if isinstance(value, BooleanValueNode):
                condition = value.value
            elif isinstance(value, VariableNode):
                condition = self.variables.get(value.name.value)
                if not isinstance(condition, bool):
                    raise NotCompilable("a directive's condition is not a boolean")
            else:
                raise NotCompilable("unexpected directive argument")
            if (name == "skip" and condition) or (name == "include" and not condition):
                included = False
        return included

    # --- the plan ------------------------------------------------------------------------

    def plan(self, operation: OperationDefinitionNode) -> _Plan:
        query = self.schema.query_type
        assert query is not None
        entries: list[tuple[str, str, Any]] = []
        for key, nodes in self.collect(query, [operation.selection_set]).items():
            name = nodes[0].name.value
            if name == "__typename":
                entries.append((key, "const", query.name))
            elif name in _CONNECTIONS:
                entries.append((key, "connection", self.connection(query, nodes)))
            else:
                raise NotCompilable(f"root field {name}")
        if not any(kind == "connection" for _, kind, _ in entries):
            raise NotCompilable("no connection")
        return _Plan(entries)

    def connection(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> _Connection:
        field_def = parent.fields[nodes[0].name.value]
        if set(field_def.args) - _CONNECTION_ARGUMENTS:
            # An argument this module does not apply would be silently ignored.
            raise NotCompilable(f"unknown arguments of {nodes[0].name.value}")
        connection_type = _named_type(field_def.type)
        # The listed rows' columns (or attributes), id and created_at (the cursor's) first.
        listed = _Columns(["id", "created_at"])
        plan = _Connection(nodes[0], field_def, [], listed, None, None, False)
        plan.kind = nodes[0].name.value
        plan.filter_variables = tuple(
            dict.fromkeys(
                name
                for argument in nodes[0].arguments or ()
                if argument.name.value == "filter"
                for name in _variables_in(argument.value)
            )
        )
        for key, fields in self._subfields(connection_type, nodes).items():
            name = fields[0].name.value
            if name == "__typename":
                plan.entries.append((key, "const", connection_type.name))
            elif name == "totalCount":
                plan.with_total = True
                plan.entries.append((key, "total", None))
            elif name == "pageInfo":
                plan.entries.append((key, "pageInfo", self.page_info(connection_type, fields)))
            elif name == "edges":
                plan.entries.append((key, "edges", self.edges(connection_type, fields, plan)))
            else:
                raise NotCompilable(f"connection field {name}")
        return plan

    def _subfields(
        self, type_: GraphQLObjectType, nodes: list[FieldNode]
    ) -> OrderedDict[str, list[FieldNode]]:
        selection_sets = [node.selection_set for node in nodes if node.selection_set]
        for node in nodes:
            if node.arguments and node.name.value not in _CONNECTIONS:
                raise NotCompilable(f"arguments on {node.name.value}")
        return self.collect(type_, selection_sets)

    def page_info(
        self, connection_type: GraphQLObjectType, nodes: list[FieldNode]
    ) -> list[tuple[str, str]]:
        page_info_type = _named_type(connection_type.fields["pageInfo"].type)
        entries: list[tuple[str, str]] = []
        for key, fields in self._subfields(page_info_type, nodes).items():
            name = fields[0].name.value
            if name == "__typename":
                entries.append((key, "=" + page_info_type.name))
            elif name in _PAGE_INFO_FIELDS:
                entries.append((key, name))
            else:
                raise NotCompilable(f"pageInfo field {name}")
        return entries

    def edges(
        self, connection_type: GraphQLObjectType, nodes: list[FieldNode], plan: _Connection
    ) -> list[tuple[str, str, Any]]:
        edge_type = _named_type(connection_type.fields["edges"].type)
        entries: list[tuple[str, str, Any]] = []
        for key, fields in self._subfields(edge_type, nodes).items():
            name = fields[0].name.value
            if name == "__typename":
                entries.append((key, "const", edge_type.name))
            elif name == "cursor":
                entries.append((key, "cursor", None))
            elif name == "node":
                node_type = _named_type(edge_type.fields["node"].type)
                entries.append((key, "node", self.node(node_type, fields, plan)))
            else:
                raise NotCompilable(f"edge field {name}")
        return entries

    def node(
        self, node_type: GraphQLObjectType, nodes: list[FieldNode], plan: _Connection
    ) -> _Node:
        if node_type.name != _CONNECTIONS[plan.kind]:
            raise NotCompilable(f"node type {node_type.name}")
        if plan.kind == "clients":
            return self.leaves(node_type, nodes, _CLIENT_ATTRIBUTES, plan.listed)
        written = _Node()
        for key, fields in self._subfields(node_type, nodes).items():
            name = fields[0].name.value
            if name in _RELATIONS:
                type_name, columns = _RELATIONS[name]
                related_type = _named_type(node_type.fields[name].type)
                if related_type.name != type_name:
                    raise NotCompilable(f"{name} is a {related_type.name}")
                if name == "client":
                    plan.client = plan.client or _Columns()
                    table = plan.client
                else:
                    plan.campaign = plan.campaign or _Columns()
                    table = plan.campaign
                related = self.leaves(related_type, fields, columns, table)
                written.writers.append((key, "relation:" + name, related))
            else:
                written.writers.append(
                    self.leaf(node_type, key, fields, _MESSAGE_COLUMNS, plan.listed)
                )
        return written

    def leaves(
        self,
        type_: GraphQLObjectType,
        nodes: list[FieldNode],
        columns: dict[str, str],
        table: _Columns,
    ) -> _Node:
        written = _Node()
        for key, fields in self._subfields(type_, nodes).items():
            written.writers.append(self.leaf(type_, key, fields, columns, table))
        return written

    def leaf(
        self,
        type_: GraphQLObjectType,
        key: str,
        fields: list[FieldNode],
        columns: dict[str, str],
        table: _Columns,
    ) -> tuple[str, str, Any]:
        name = fields[0].name.value
        if name == "__typename":
            return (key, "const", type_.name)
        if any(node.selection_set or node.arguments for node in fields):
            raise NotCompilable(f"{type_.name}.{name} has a selection or arguments")
        field_def = type_.fields[name]
        if name == "id":
            # relay.Node's global id: base64 of "<Type>:<uuid>".
            return (key, "global_id", (table.index("id"), type_.name))
        strawberry_field = field_def.extensions.get("strawberry-definition")
        if strawberry_field is None or strawberry_field.base_resolver is not None:
            raise NotCompilable(f"{type_.name}.{name} has a resolver")
        column = columns.get(strawberry_field.python_name)
        if column is None:
            raise NotCompilable(f"{type_.name}.{name} is not a column")
        return (key, "column", (table.index(column), _leaf_serializer(field_def.type)))


# --- writing the answer -------------------------------------------------------------------


def _finish(plan: _Plan) -> _Plan:
    """Fix the row positions now that each connection's columns are known, and generate
    each connection's writer."""
    for _, kind, connection in plan.entries:
        if kind != "connection":
            continue
        offsets = {"message": 0}
        position = len(connection.listed.names)
        if connection.client is not None:
            offsets["client"] = position
            position += len(connection.client.names)
        if connection.campaign is not None:
            offsets["campaign"] = position
        connection.columns = ListingColumns(
            tuple(connection.listed.names),
            tuple(connection.client.names) if connection.client else None,
            tuple(connection.campaign.names) if connection.campaign else None,
        )
        connection.write = _Generator(offsets).connection(connection.entries)
    return plan


class _Generator:
    """Writes a connection's writer as Python source, compiled once per plan.

    The answer of a page is then dict and list displays with constant keys, filled
    from the row by position: no per-field dispatch. Keys are GraphQL names (the
    parser allows only ``[_A-Za-z][_0-9A-Za-z]*``) written with ``repr``; every other
    value (serializers, constants) is a name bound in the function's namespace.
    """

    def __init__(self, offsets: dict[str, int]) -> None:
        self.offsets = offsets
        self.namespace: dict[str, Any] = {"_cursor": _row_cursor, "_global_id": to_base64}

    def bind(self, value: Any) -> str:
        name = f"_v{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def node(self, writers: list[tuple[str, str, Any]], offset: int) -> str:
        items = []
        for key, kind, payload in writers:
            if kind == "const":
                value = self.bind(payload)
            elif kind == "global_id":
                index, type_name = payload
                value = f"_global_id({type_name!r}, str(row[{index + offset}]))"
            elif kind == "column":
                index, serialize = payload
                cell = f"row[{index + offset}]"
                value = f"(None if {cell} is None else {self.bind(serialize)}({cell}))"
            else:  # relation: null without a (joined) related row
                base = self.offsets[kind.partition(":")[2]]
                value = f"(None if row[{base}] is None else {self.node(payload.writers, base)})"
            items.append(f"{key!r}: {value}")
        return "{" + ", ".join(items) + "}"

    def connection(self, entries: list[tuple[str, str, Any]]) -> Callable[..., dict[str, Any]]:
        items = []
        cursors = False
        for key, kind, payload in entries:
            if kind == "const":
                items.append(f"{key!r}: {self.bind(payload)}")
            elif kind == "total":
                items.append(f"{key!r}: total")
            elif kind == "pageInfo":
                info = []
                for info_key, name in payload:
                    value = {
                        "hasNextPage": "has_next",
                        "hasPreviousPage": "has_previous",
                        "startCursor": "(cursors[0] if cursors else None)",
                        "endCursor": "(cursors[-1] if cursors else None)",
                    }.get(name) or self.bind(name[1:])  # "=<__typename>"
                    cursors = cursors or name in ("startCursor", "endCursor")
                    info.append(f"{info_key!r}: {value}")
                items.append(f"{key!r}: {{{', '.join(info)}}}")
            else:  # edges
                edge = []
                for edge_key, edge_kind, node in payload:
                    if edge_kind == "cursor":
                        cursors = True
                        edge.append(f"{edge_key!r}: cursor")
                    elif edge_kind == "const":
                        edge.append(f"{edge_key!r}: {self.bind(node)}")
                    else:
                        edge.append(f"{edge_key!r}: {self.node(node.writers, 0)}")
                items.append(
                    f"{key!r}: [{{{', '.join(edge)}}} for row, cursor in zip(rows, cursors)]"
                )
        # Every connection with edges needs the rows' cursors only if it shows them.
        source = (
            "def write(rows, has_next, has_previous, total):\n"
            + (
                "    cursors = [_cursor(row) for row in rows]\n"
                if cursors
                else "    cursors = rows\n"
            )
            + f"    return {{{', '.join(items)}}}\n"
        )
        exec(compile(source, "<compiled list writer>", "exec"), self.namespace)
        return self.namespace["write"]  # type: ignore[no-any-return]


async def _list_clients(
    session: Any,
    organization_id: Any,
    client_filter: ClientFilter,
    page: KeysetPage,
    connection: _Connection,
) -> tuple[Page[Sequence[Any]], int | None]:
    """``ClientQuery.clients``' page and count, through the same services; each client as a
    tuple of the attributes the plan reads."""
    found = await client_service.list_clients(
        session, organization_id=organization_id, client_filter=client_filter, page=page
    )
    total = None
    if connection.with_total:
        total = await client_service.count_clients(
            session, organization_id=organization_id, client_filter=client_filter
        )
    read = attrgetter(*connection.listed.names)
    rows = [read(client) for client in found.rows]
    return Page(rows, found.has_next, found.has_previous), total


def _row_cursor(row: Sequence[Any]) -> str:
    return encode_cursor(row[1], row[0])  # id and created_at lead every row


# --- the extension ---------------------------------------------------------------------------


class CompiledLists:
    """Documents analysed and plans built, shared by all requests of a process."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.documents: OrderedDict[tuple[str, str | None], _Document | None] = OrderedDict()
        # Documents validated by strawberry's pipeline, by text and requested operation.
        self.validated: OrderedDict[tuple[str, str | None], _Document] = OrderedDict()
        # Converted filters (frozen, shared safely), see _arguments.
        self.filters: dict[tuple[Any, ...], Any] = {}

    @property
    def graphql_schema(self) -> GraphQLSchema:
        return self.schema._schema  # type: ignore[no-any-return]

    def document(self, execution_context: Any) -> _Document | None:
        if execution_context.query is None:
            return None
        key = (execution_context.query, execution_context.operation_name)
        try:
            document = self.documents[key]
        except KeyError:
            document = self.documents[key] = self._analyse(execution_context)
            if len(self.documents) > DOCUMENT_CACHE_SIZE:
                self.documents.popitem(last=False)
        else:
            self.documents.move_to_end(key)
        return document

    @staticmethod
    def _analyse(execution_context: Any) -> _Document | None:
        document = execution_context.graphql_document
        if document is None:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        name = execution_context.operation_name
        if name is None:
            operation = operations[0] if len(operations) == 1 else None
        else:
            operation = next((o for o in operations if o.name and o.name.value == name), None)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        if operation.directives:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        if any(f.directives or f.variable_definitions for f in fragments.values()):
            return None
        variables: list[str] = []

        def visit(selection_set: SelectionSetNode | None) -> None:
            for selection in selection_set.selections if selection_set else ():
                for directive in selection.directives or ():
                    for argument in directive.arguments or ():
                        if isinstance(argument.value, VariableNode):
                            variables.append(argument.value.name.value)
                visit(getattr(selection, "selection_set", None))

        visit(operation.selection_set)
        for fragment in fragments.values():
            visit(fragment.selection_set)
        return _Document(
            operation,
            fragments,
            tuple(dict.fromkeys(variables)),
            tuple(o.name.value if o.name else None for o in operations),
        )

    def plan(self, document: _Document, variables: dict[str, Any]) -> _Plan | None:
        key = tuple(variables.get(name) for name in document.directive_variables)
        try:
            return document.plans[key]
        except KeyError:
            pass
        except TypeError:  # unhashable values: not a boolean anyway
            return None
        try:
            plan: _Plan | None = _finish(
                _Compiler(self.graphql_schema, document.fragments, variables).plan(
                    document.operation
                )
            )
        except NotCompilable:
            plan = None
        document.plans[key] = plan
        if len(document.plans) > PLANS_PER_DOCUMENT:
            document.plans.popitem(last=False)
        return plan

    async def execute(self, execution_context: Any) -> dict[str, Any] | None:
        """The operation's ``data``, or None to leave it to the executor."""
        document = self.document(execution_context)
        if document is None:
            return None
        # Strawberry's parsing, limits and validation passed for this text: later
        # requests of it may come straight from the HTTP endpoint (see ``answer``).
        query = execution_context.query
        self.validated[(query, execution_context.operation_name)] = document
        if len(document.operation_names) == 1:
            self.validated[(query, None)] = document
        if len(self.validated) > DOCUMENT_CACHE_SIZE:
            self.validated.popitem(last=False)
        return await self.execute_document(
            document, execution_context.variables, execution_context.context
        )

    async def answer(
        self, query: str, operation_name: str | None, variables: Any, context: Any
    ) -> dict[str, Any] | None:
        """``data`` for a request of an operation already seen through the whole strawberry
        pipeline (parsed, within the limits, validated: outcomes that depend on the text
        alone, kept by the parser and validation caches anyway) and analysed as compilable;
        None (the request goes the usual way) for any other or when execution gives up."""
        document = self.validated.get((query, operation_name))
        if document is None or not (variables is None or isinstance(variables, dict)):
            return None
        data = await self.execute_document(document, variables, context)
        if data is not None:
            COMPILED_OPERATIONS.labels("endpoint").inc()
        return data

    async def execute_document(
        self, document: _Document, variables: dict[str, Any] | None, context: Any
    ) -> dict[str, Any] | None:
        coerced = get_variable_values(
            self.graphql_schema, document.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):  # invalid variables: the executor says why
            return None
        plan = self.plan(document, coerced.coerced)
        if plan is None:
            return None
        settings = getattr(context.request.app.state, "settings", None) or get_settings()
        try:
            arguments = [
                self._arguments(
                    connection,
                    coerced,
                    variables or {},
                    settings.graphql_max_page_size,
                )
                for _, kind, connection in plan.entries
                if kind == "connection"
            ]
        except Exception:  # invalid arguments: the executor answers the error
            return None
        organization_id = context.principal.organization_id
        data: dict[str, Any] = {}
        try:
            pending = iter(arguments)
            for key, kind, payload in plan.entries:
                if kind == "const":
                    data[key] = payload
                    continue
                list_filter, page = next(pending)
                async with context.read() as session:
                    if payload.kind == "clients":
                        found, total = await _list_clients(
                            session, organization_id, list_filter, page, payload
                        )
                    else:
                        found, total = await message_service.list_message_rows(
                            session,
                            organization_id=organization_id,
                            message_filter=list_filter,
                            page=page,
                            columns=payload.columns,
                            with_total=payload.with_total,
                        )
                data[key] = payload.write(found.rows, found.has_next, found.has_previous, total)
        except Exception:
            # The executor runs the operation again in a fresh session (a failed
            # statement leaves PostgreSQL's transaction unusable) and answers the error.
            logger.debug("compiled list path gave up", exc_info=True)
            await context.close()
            return None
        return data

    def _arguments(
        self, connection: _Connection, coerced: Any, raw_variables: dict[str, Any], max_size: int
    ) -> tuple[Any, KeysetPage]:
        """The resolver's argument conversion and validation (``MessageQuery.messages``,
        ``ClientQuery.clients``).

        Paging arguments are plain integers and strings; the filter goes through
        strawberry's input conversion (0.7 ms for MessageFilterInput), remembered per
        connection and values of the variables its argument uses.
        """
        values = get_argument_values(connection.field_def, connection.field_node, coerced)
        page = KeysetPage.from_arguments(
            first=values.get("first"),
            after=values.get("after"),
            last=values.get("last"),
            before=values.get("before"),
            max_size=max_size,
        )
        if values.get("filter") is None:
            return (ClientFilter() if connection.kind == "clients" else MessageFilter()), page
        key = (
            connection,
            tuple(
                orjson.dumps(raw_variables[name]) if name in raw_variables else None
                for name in connection.filter_variables
            ),
        )
        list_filter = self.filters.get(key)
        if list_filter is None:
            strawberry_field = connection.field_def.extensions["strawberry-definition"]
            converted = convert_arguments(
                {"filter": values["filter"]},
                [
                    argument
                    for argument in strawberry_field.arguments
                    if argument.python_name == "filter"
                ],
                scalar_registry=self.schema.schema_converter.scalar_registry,
                config=self.schema.config,
            )["filter"]
            list_filter = converted.to_filter()
            if len(self.filters) >= FILTER_CACHE_SIZE:
                self.filters.clear()
            self.filters[key] = list_filter
        return list_filter, page


class CompiledListsExtension(SchemaExtension):
    """Answers compilable list queries (see the module) before the executor would run."""

    compiled: CompiledLists | None = None

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        execution_context = self.execution_context
        context = execution_context.context
        request = getattr(context, "request", None)
        if (
            isinstance(request, Request)
            and (
                getattr(request.app.state, "settings", None) or get_settings()
            ).graphql_compiled_lists
            and execution_context.result is None
        ):
            compiled = CompiledListsExtension.compiled
            if compiled is None:
                compiled = CompiledListsExtension.compiled = CompiledLists(execution_context.schema)
            data = await compiled.execute(execution_context)
            if data is not None:
                execution_context.result = ExecutionResult(data=data, errors=None)
                COMPILED_OPERATIONS.labels("execute").inc()
        yield
