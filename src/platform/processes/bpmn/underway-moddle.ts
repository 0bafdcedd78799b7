// Our moddle extension: what a process needs that BPMN 2.0 has no standard place for.
// Kept as a plain descriptor so a browser modeler (bpmn-js `moddleExtensions: { underway }`)
// reads and writes the same attributes as the server.
import type { ModdlePackage } from "bpmn-moddle";

export const UNDERWAY_BPMN_NAMESPACE = "http://underway.dev/schema/bpmn";
export const UNDERWAY_BPMN_PREFIX = "underway";

/**
 * - `underway:usings="UsrActivityData,UsrBackgroundActivityCreator"` on bpmn:scriptTask: the schemas
 *   the script refers to, comma separated (the platform's "usings" of a script task).
 * - `<underway:parameter name=".." type=".." default=".."/>` in a bpmn:process's
 *   bpmn:extensionElements: one process parameter.
 */
export const underwayModdlePackage: ModdlePackage = {
  name: "Underway",
  uri: UNDERWAY_BPMN_NAMESPACE,
  prefix: UNDERWAY_BPMN_PREFIX,
  xml: { tagAlias: "lowerCase" },
  associations: [],
  types: [
    {
      name: "ScriptUsings",
      isAbstract: true,
      extends: ["bpmn:ScriptTask"],
      properties: [{ name: "usings", isAttr: true, type: "String" }],
    },
    {
      name: "Parameter",
      superClass: ["Element"],
      properties: [
        { name: "name", isAttr: true, type: "String" },
        { name: "type", isAttr: true, type: "String" },
        { name: "default", isAttr: true, type: "String" },
      ],
    },
  ],
};
