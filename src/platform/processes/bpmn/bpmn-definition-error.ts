/**
 * Thrown by parseProcess and serializeProcess when a BPMN file cannot be read or describes a
 * process we cannot run. `problems` has one line per problem, each naming the element it is about
 * (`bpmn:UserTask "Approve" (Task_1) is not supported`), so an editor can list them all at once.
 */
export class BpmnDefinitionError extends Error {
  override readonly name = "BpmnDefinitionError";
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: ErrorOptions) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`BPMN process definition refused (${count}):\n${problems.map((p) => `- ${p}`).join("\n")}`, options);
    this.problems = Object.freeze([...problems]);
  }
}
