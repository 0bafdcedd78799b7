// BPMN 2.0 XML -> ProcessDefinition: what we can run, or every reason we cannot.
//
// Problems are collected, never thrown one by one, so a modeler sees the whole list at once. They
// come in document order: moddle's warnings, then the root elements, the parameters, the flow
// elements, the sequence flows, and last the shape of the graph (start, dead ends, reachability).
import type { ModdleElement } from "bpmn-moddle";
import { BpmnDefinitionError } from "./bpmn-definition-error.ts";
import { describe, elementProp, elementsProp, shownText, stringProp, UNSTORABLE_TEXT } from "./elements.ts";
import { readDefinitions } from "./moddle.ts";
import { parseParameters } from "./parameters.ts";
import type {
  ProcessDefinition,
  ProcessElementDefinition,
  ProcessElementKind,
  SequenceFlowDefinition,
} from "./types.ts";

/** scriptFormat / condition language values we run as TypeScript; compared case-insensitively. */
const TYPESCRIPT_FORMATS: ReadonlySet<string> = new Set(["typescript", "ts", "javascript"]);
/** A schema name, optionally dotted like a namespace (Terrasoft.Core). */
const USING = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;

interface Node {
  readonly id: string;
  readonly element: ModdleElement;
  /** undefined: an element we do not support (already reported); kept so reachability passes through it. */
  readonly kind: ProcessElementKind | undefined;
  readonly script?: string;
  readonly usings?: readonly string[];
}

interface Flow {
  readonly id: string;
  readonly element: ModdleElement;
  readonly sourceId: string | undefined;
  readonly targetId: string | undefined;
  readonly name: string | undefined;
  readonly condition: string | undefined;
}

/** Reads a BPMN file and returns its process; throws BpmnDefinitionError listing every problem. */
export async function parseProcess(xml: string): Promise<ProcessDefinition> {
  const read = await readDefinitions(xml);
  const problems: string[] = [...read.warnings];
  const definition = buildDefinition(read.definitions, read.unresolved, problems);
  if (problems.length > 0 || definition === undefined) {
    // A problem quotes ids and names as read (moddle's warnings too): escaped, it can be shown and stored anywhere.
    throw new BpmnDefinitionError(problems.length > 0 ? problems.map(shownText) : ["the document holds no process"]);
  }
  return definition;
}

function buildDefinition(
  definitions: ModdleElement,
  unresolved: ReadonlySet<string>,
  problems: string[],
): ProcessDefinition | undefined {
  const process = chooseProcess(definitions, problems);
  if (process === undefined) return undefined;
  const code = stringProp(process, "id");
  if (!code) problems.push(`${describe(process)} has no id`);
  checkStorable(process, problems);

  const parameters = parseParameters(process, problems);
  const { nodes, flows, attachedTo } = readFlowElements(process, problems);
  const graph = indexFlows(flows);
  const defaults = checkFlows(nodes, flows, graph, unresolved, problems);
  const startEventId = checkGraph(nodes, graph, attachedTo, problems);

  if (problems.length > 0 || !code || startEventId === undefined) return undefined;
  const elements = new Map<string, ProcessElementDefinition>();
  for (const node of nodes.values()) {
    if (node.kind === undefined) continue;
    const incoming = (graph.incoming.get(node.id) ?? []).map((flow) => flow.id);
    const outgoing = (graph.outgoing.get(node.id) ?? []).map((flow) => toDefinition(flow, defaults));
    elements.set(node.id, {
      id: node.id,
      name: stringProp(node.element, "name") ?? "",
      kind: node.kind,
      incoming,
      outgoing,
      ...(node.kind === "scriptTask" ? { script: node.script ?? "", usings: node.usings ?? [] } : {}),
    });
  }
  return { code, name: stringProp(process, "name") ?? code, parameters, startEventId, elements };
}

interface Graph {
  /** element id -> flows leaving it / entering it, in document order */
  readonly outgoing: ReadonlyMap<string, readonly Flow[]>;
  readonly incoming: ReadonlyMap<string, readonly Flow[]>;
}

function indexFlows(flows: readonly Flow[]): Graph {
  const outgoing = new Map<string, Flow[]>();
  const incoming = new Map<string, Flow[]>();
  const add = (map: Map<string, Flow[]>, id: string | undefined, flow: Flow) => {
    if (id === undefined) return;
    const list = map.get(id);
    if (list) list.push(flow);
    else map.set(id, [flow]);
  };
  for (const flow of flows) {
    add(outgoing, flow.sourceId, flow);
    add(incoming, flow.targetId, flow);
  }
  return { outgoing, incoming };
}

function toDefinition(flow: Flow, defaults: ReadonlySet<string>): SequenceFlowDefinition {
  return {
    id: flow.id,
    sourceId: flow.sourceId ?? "",
    targetId: flow.targetId ?? "",
    ...(flow.name !== undefined ? { name: flow.name } : {}),
    ...(flow.condition !== undefined ? { condition: flow.condition } : {}),
    isDefault: defaults.has(flow.id),
  };
}

/**
 * The process to run: the first bpmn:process with flow elements (empty ones, such as the process
 * behind a pool nobody drew in, carry nothing to run). Every other root element is checked here.
 */
function chooseProcess(definitions: ModdleElement, problems: string[]): ModdleElement | undefined {
  const roots = elementsProp(definitions, "rootElements");
  const processes = roots.filter((root) => root.$type === "bpmn:Process");
  const process = processes.find((p) => elementsProp(p, "flowElements").length > 0) ?? processes[0];
  if (process === undefined) {
    problems.push("the document has no bpmn:process");
    return undefined;
  }
  for (const root of roots) {
    switch (root.$type) {
      case "bpmn:Process":
        if (root !== process && elementsProp(root, "flowElements").length > 0) {
          problems.push(`${describe(root)} is not supported: one process per file`);
        }
        break;
      case "bpmn:Collaboration":
        for (const participant of elementsProp(root, "participants")) {
          if (elementProp(participant, "processRef") !== process) {
            problems.push(`${describe(participant)} is not supported: a collaboration may hold only the process's own pool`);
          }
        }
        for (const messageFlow of elementsProp(root, "messageFlows")) unsupported(messageFlow, problems);
        break;
      case "bpmn:Category": // the labels of bpmn:group artifacts, which only group visually
        break;
      default:
        unsupported(root, problems);
    }
  }
  return process;
}

function readFlowElements(process: ModdleElement, problems: string[]) {
  const nodes = new Map<string, Node>();
  const flows: Flow[] = [];
  /** boundary event id -> id of the activity it is attached to */
  const attachedTo = new Map<string, string>();
  for (const element of elementsProp(process, "flowElements")) {
    const id = stringProp(element, "id");
    if (!id) {
      problems.push(`${describe(element)} has no id`);
      continue;
    }
    checkStorable(element, problems);
    if (element.$type === "bpmn:SequenceFlow") {
      const expression = elementProp(element, "conditionExpression");
      flows.push({
        id,
        element,
        sourceId: idOf(elementProp(element, "sourceRef")),
        targetId: idOf(elementProp(element, "targetRef")),
        name: stringProp(element, "name"),
        condition: expression ? readCondition(element, expression, problems) : undefined,
      });
      continue;
    }
    if (element.$type === "bpmn:BoundaryEvent") {
      const host = idOf(elementProp(element, "attachedToRef"));
      if (host) attachedTo.set(id, host);
    }
    nodes.set(id, readNode(id, element, problems));
  }
  return { nodes, flows, attachedTo };
}

/**
 * An id or a name is stored with every run (the process log's title, element ids and names): one
 * that holds a character no store keeps (NUL, a lone surrogate) is refused here, when saved,
 * rather than failing every run on PostgreSQL (or being stored changed, so that a run resumed
 * later cannot find its element).
 */
function checkStorable(element: ModdleElement, problems: string[]): void {
  for (const property of ["id", "name"] as const) {
    const value = stringProp(element, property);
    const found = value?.match(UNSTORABLE_TEXT);
    if (!found) continue;
    const what = found[0] === "\u0000" ? "a NUL character (&#0;)" : `a lone surrogate (U+${found[0].charCodeAt(0).toString(16).toUpperCase()})`;
    problems.push(`${describe(element)}: its ${property} holds ${what}, which cannot be stored; remove it`);
  }
}

function readNode(id: string, element: ModdleElement, problems: string[]): Node {
  const definitions = eventDefinitionTypes(element);
  switch (element.$type) {
    case "bpmn:StartEvent":
      if (definitions.length === 0) return { id, element, kind: "startEvent" };
      problems.push(`${describe(element)} with ${definitions.join(", ")} is not supported`);
      return { id, element, kind: undefined };
    case "bpmn:EndEvent":
      if (definitions.length === 0) return { id, element, kind: "endEvent" };
      if (definitions.length === 1 && definitions[0] === "bpmn:TerminateEventDefinition") {
        return { id, element, kind: "terminateEndEvent" };
      }
      problems.push(`${describe(element)} with ${definitions.join(", ")} is not supported`);
      return { id, element, kind: undefined };
    case "bpmn:ExclusiveGateway":
      return { id, element, kind: "exclusiveGateway" };
    case "bpmn:ScriptTask":
      return readScriptTask(id, element, problems);
    default:
      unsupported(element, problems);
      return { id, element, kind: undefined };
  }
}

function readScriptTask(id: string, element: ModdleElement, problems: string[]): Node {
  const loop = elementProp(element, "loopCharacteristics");
  if (loop) {
    problems.push(`${describe(element)} with ${loop.$type} is not supported`);
    return { id, element, kind: undefined };
  }
  const format = stringProp(element, "scriptFormat");
  if (format !== undefined && !TYPESCRIPT_FORMATS.has(format.trim().toLowerCase())) {
    problems.push(`${describe(element)} has scriptFormat "${format}"; only typescript is supported`);
  }
  const script = stringProp(element, "script") ?? "";
  if (script.trim() === "") problems.push(`${describe(element)} has no script body`);
  const usings = (stringProp(element, "usings") ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  for (const name of usings) {
    if (!USING.test(name)) problems.push(`${describe(element)}: "${name}" in underway:usings is not a schema name`);
  }
  return { id, element, kind: "scriptTask", script, usings };
}

function readCondition(flow: ModdleElement, expression: ModdleElement, problems: string[]): string | undefined {
  const language = stringProp(expression, "language");
  if (language !== undefined && !TYPESCRIPT_FORMATS.has(language.trim().toLowerCase())) {
    problems.push(`${describe(flow)} has a condition in language "${language}"; only typescript is supported`);
  }
  const body = stringProp(expression, "body")?.trim();
  return body ? body : undefined;
}

/**
 * Checks each flow's ends and conditions against the exclusive gateway rules; returns the ids of
 * the gateways' default flows.
 */
function checkFlows(
  nodes: ReadonlyMap<string, Node>,
  flows: readonly Flow[],
  graph: Graph,
  unresolved: ReadonlySet<string>,
  problems: string[],
): Set<string> {
  for (const flow of flows) {
    for (const [end, id] of [["sourceRef", flow.sourceId], ["targetRef", flow.targetId]] as const) {
      if (id === undefined) {
        // An unresolved reference is already a moddle warning naming the missing id.
        if (!unresolved.has(`${flow.id} ${end}`)) problems.push(`${describe(flow.element)} has no ${end}`);
      } else if (!nodes.has(id)) {
        problems.push(`${describe(flow.element)}: ${end} "${id}" is not a flow element of the process`);
      }
    }
  }

  const defaults = new Set<string>();
  for (const node of nodes.values()) {
    if (node.kind !== "exclusiveGateway") continue;
    const defaultFlow = elementProp(node.element, "default");
    const defaultId = idOf(defaultFlow);
    if (defaultFlow && defaultId !== undefined) {
      if (graph.outgoing.get(node.id)?.some((flow) => flow.id === defaultId)) defaults.add(defaultId);
      else problems.push(`${describe(node.element)}: its default flow ${defaultId} does not leave it`);
    }
  }

  for (const flow of flows) {
    const source = flow.sourceId === undefined ? undefined : nodes.get(flow.sourceId);
    if (source?.kind === undefined) continue; // missing or unsupported: reported already
    if (source.kind !== "exclusiveGateway") {
      if (flow.condition !== undefined) {
        problems.push(
          `${describe(flow.element)} has a condition, but only flows leaving an exclusive gateway may have one`,
        );
      }
      continue;
    }
    const isDefault = defaults.has(flow.id);
    const branches = graph.outgoing.get(source.id)?.length ?? 0;
    if (isDefault && flow.condition !== undefined) {
      problems.push(`${describe(flow.element)} is the default flow of ${describe(source.element)} and cannot have a condition`);
    } else if (!isDefault && flow.condition === undefined && branches > 1) {
      // A gateway with a single way out (a merge) needs no condition on it.
      problems.push(`${describe(flow.element)} leaves ${describe(source.element)} without a condition and is not its default flow`);
    }
  }
  return defaults;
}

/** Checks the graph's shape; returns the start event's id when there is exactly one and it is supported. */
function checkGraph(
  nodes: ReadonlyMap<string, Node>,
  graph: Graph,
  attachedTo: ReadonlyMap<string, string>,
  problems: string[],
): string | undefined {
  const starts = [...nodes.values()].filter((node) => node.element.$type === "bpmn:StartEvent");
  if (starts.length === 0) problems.push("the process has no start event");
  if (starts.length > 1) {
    problems.push(`the process has ${starts.length} start events (${starts.map((s) => s.id).join(", ")}); exactly one is supported`);
  }
  const reached = reachable(starts.map((start) => start.id), nodes, graph, attachedTo);
  const ending = canEnd(nodes, graph, attachedTo);

  for (const node of nodes.values()) {
    if (node.kind === undefined) continue;
    const outgoing = graph.outgoing.get(node.id)?.length ?? 0;
    const incoming = graph.incoming.get(node.id)?.length ?? 0;
    const what = describe(node.element);
    switch (node.kind) {
      case "startEvent":
        if (incoming > 0) problems.push(`${what} is a start event and cannot have incoming sequence flows`);
        break;
      case "endEvent":
      case "terminateEndEvent":
        if (outgoing > 0) problems.push(`${what} is an end event and cannot have outgoing sequence flows`);
        break;
      default:
        break;
    }
    if (node.kind !== "endEvent" && node.kind !== "terminateEndEvent") {
      if (outgoing === 0) problems.push(`${what} has no outgoing sequence flow`);
      if (outgoing > 1 && node.kind !== "exclusiveGateway") {
        problems.push(`${what} has ${outgoing} outgoing sequence flows; only an exclusive gateway may branch`);
      }
    }
    if (starts.length > 0 && !reached.has(node.id)) problems.push(`${what} is not reachable from the start event`);
  }
  // Once the graph is otherwise sound: a loop with no way out would run until canceled.
  const endless = [...nodes.values()].filter((node) => node.kind !== undefined && reached.has(node.id) && !ending.has(node.id));
  if (problems.length === 0 && endless.length > 0) {
    problems.push(`no end event can be reached from ${endless.map((node) => describe(node.element)).join(", ")}: an instance that reaches ${endless.length === 1 ? "it" : "them"} would never end`);
  }

  const [start] = starts;
  return starts.length === 1 && start?.kind === "startEvent" ? start.id : undefined;
}

/** Ids reachable from the starts along sequence flows; a boundary event is reached with its activity. */
function reachable(
  starts: readonly string[],
  nodes: ReadonlyMap<string, Node>,
  graph: Graph,
  attachedTo: ReadonlyMap<string, string>,
): Set<string> {
  const boundaries = new Map<string, string[]>();
  for (const [boundary, host] of attachedTo) {
    // Pushed, not copied: thousands of boundary events on one task must not cost their square.
    const list = boundaries.get(host);
    if (list) list.push(boundary);
    else boundaries.set(host, [boundary]);
  }
  const seen = new Set<string>();
  const queue = [...starts];
  for (let next = 0; next < queue.length; next++) {
    const id = queue[next];
    if (id === undefined || seen.has(id) || !nodes.has(id)) continue;
    seen.add(id);
    for (const flow of graph.outgoing.get(id) ?? []) if (flow.targetId !== undefined) queue.push(flow.targetId);
    for (const boundary of boundaries.get(id) ?? []) queue.push(boundary);
  }
  return seen;
}

/** The nodes from which an end event can be reached (through flows, or a boundary event of theirs). */
function canEnd(nodes: ReadonlyMap<string, Node>, graph: Graph, attachedTo: ReadonlyMap<string, string>): Set<string> {
  const queue = [...nodes.values()].filter((n) => n.kind === "endEvent" || n.kind === "terminateEndEvent").map((n) => n.id);
  const seen = new Set<string>();
  for (let next = 0; next < queue.length; next++) {
    const id = queue[next];
    if (id === undefined || seen.has(id)) continue;
    seen.add(id);
    for (const flow of graph.incoming.get(id) ?? []) if (flow.sourceId !== undefined) queue.push(flow.sourceId);
    const host = attachedTo.get(id);
    if (host !== undefined) queue.push(host);
  }
  return seen;
}

function eventDefinitionTypes(element: ModdleElement): string[] {
  return [...elementsProp(element, "eventDefinitions"), ...elementsProp(element, "eventDefinitionRefs")].map(
    (definition) => definition.$type,
  );
}

function unsupported(element: ModdleElement, problems: string[]): void {
  problems.push(`${describe(element)} is not supported`);
}

function idOf(element: ModdleElement | undefined): string | undefined {
  return element ? stringProp(element, "id") : undefined;
}
