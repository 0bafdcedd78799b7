// BPMN 2.0 process definitions: read a .bpmn file into what the process runner executes, and
// write it back for Save. See docs/processes-bpmn.md for what is supported.
export type {
  ProcessDefinition,
  ProcessElementDefinition,
  ProcessElementKind,
  ProcessParameterDefinition,
  ProcessParameterType,
  SequenceFlowDefinition,
} from "./types.ts";
export { BpmnDefinitionError } from "./bpmn-definition-error.ts";
export { parseProcess } from "./parse-process.ts";
export { serializeProcess } from "./serialize-process.ts";
export { withoutProcessCode } from "./redact-process.ts";
export { MAX_BPMN_BYTES, MAX_NAMESPACE_DECLARATIONS } from "./moddle.ts";
export { isParameterType, PARAMETER_TEXT_CHECKS, PROCESS_PARAMETER_TYPES } from "./parameters.ts";
export { UNDERWAY_BPMN_NAMESPACE, UNDERWAY_BPMN_PREFIX, underwayModdlePackage } from "./underway-moddle.ts";
