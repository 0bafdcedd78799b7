// The executable shape of a process, as read from its BPMN 2.0 file.
//
// Terms: an *element* is a flow node (event, task, gateway) keyed by its BPMN id; a *flow* is a
// sequence flow between two elements. `incoming` lists flow ids; `outgoing` holds the flows
// themselves, in document order, because that is what a runner walks.

export type ProcessParameterType = "text" | "integer" | "boolean" | "guid" | "datetime";

export interface ProcessParameterDefinition {
  readonly name: string;
  readonly type: ProcessParameterType;
  /** The `default` attribute as written; checked against `type` when parsed. */
  readonly defaultValue?: string;
}

export type ProcessElementKind = "startEvent" | "scriptTask" | "exclusiveGateway" | "endEvent" | "terminateEndEvent";

export interface SequenceFlowDefinition {
  readonly id: string;
  readonly sourceId: string;
  readonly targetId: string;
  readonly name?: string;
  /** A TypeScript boolean expression, the body of the flow's conditionExpression (trimmed). */
  readonly condition?: string;
  /** True for the flow named by its exclusive gateway's `default` attribute. */
  readonly isDefault: boolean;
}

export interface ProcessElementDefinition {
  readonly id: string;
  /** The BPMN name, or "" when the element has none. */
  readonly name: string;
  readonly kind: ProcessElementKind;
  /** Ids of the sequence flows that enter this element. */
  readonly incoming: readonly string[];
  readonly outgoing: readonly SequenceFlowDefinition[];
  /** Script tasks only: the TypeScript function body (the bpmn:script text). */
  readonly script?: string;
  /** Script tasks only: the schema names of `underway:usings`, in order (empty when absent). */
  readonly usings?: readonly string[];
}

export interface ProcessDefinition {
  /** The bpmn:process id, e.g. UsrBackgroundTaskExampleProcess. */
  readonly code: string;
  /** The bpmn:process name, or the code when it has none. */
  readonly name: string;
  readonly parameters: readonly ProcessParameterDefinition[];
  readonly startEventId: string;
  /** Every element of the process by id, in document order. Sequence flows are not elements. */
  readonly elements: ReadonlyMap<string, ProcessElementDefinition>;
}
