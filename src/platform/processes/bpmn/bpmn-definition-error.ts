/**
 * Thrown by parseProcess and serializeProcess when a BPMN file cannot be read or describes a
 * process we cannot run. `problems` has one line per problem, each naming the element it is about
 * (`bpmn:UserTask "Approve" (Task_1) is not supported`), so an editor can list them all at once;
 * past MAX_LISTED_PROBLEMS, the first ones and a last line `and N more` (`count` has them all).
 */
export class BpmnDefinitionError extends Error {
  override readonly name = "BpmnDefinitionError";
  readonly problems: readonly string[];

  /** How many problems were found; `problems` lists at most MAX_LISTED_PROBLEMS of them. */
  readonly count: number;

  constructor(problems: readonly string[], options?: ErrorOptions) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length.toLocaleString("en-US")} problems`;
    // A file of 100,000 broken elements would otherwise be refused with a message of megabytes.
    const listed = problems.length > MAX_LISTED_PROBLEMS ? [...problems.slice(0, MAX_LISTED_PROBLEMS), `and ${(problems.length - MAX_LISTED_PROBLEMS).toLocaleString("en-US")} more`] : problems;
    super(`BPMN process definition refused (${count}):\n${listed.map((p) => `- ${p}`).join("\n")}`, options);
    this.problems = Object.freeze([...listed]);
    this.count = problems.length;
  }
}

/** Problems a refusal lists; past this many, one last line says how many more there are. */
export const MAX_LISTED_PROBLEMS = 100;
