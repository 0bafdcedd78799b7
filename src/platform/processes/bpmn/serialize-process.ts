import { BpmnDefinitionError } from "./bpmn-definition-error.ts";
import { readDefinitions, writeDefinitions } from "./moddle.ts";

/**
 * Reads a BPMN file with moddle and writes it back, formatted: what Save stores. The process need
 * not be runnable yet (Publish runs parseProcess), but the file must be one moddle can write back
 * whole: malformed XML, more than 5 MB, or anything moddle warns about (content it skipped, a
 * reference it could not resolve, an unknown attribute) is refused with BpmnDefinitionError
 * rather than silently dropped. Diagram interchange (bpmndi) and foreign extensions are kept.
 */
export async function serializeProcess(xml: string): Promise<string> {
  const read = await readDefinitions(xml);
  if (read.warnings.length > 0) throw new BpmnDefinitionError(read.warnings);
  return writeDefinitions(read.definitions);
}
