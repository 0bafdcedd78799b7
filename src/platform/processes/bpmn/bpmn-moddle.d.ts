// bpmn-moddle 10 ships generated element types (bpmn-moddle/types) but no declaration for its
// entry point, so this is the slice of its API we call. Element properties are `unknown` on
// purpose: the reader narrows every value it uses (see moddle.ts).
declare module "bpmn-moddle" {
  /** A model element as moddle builds it from XML. */
  export interface ModdleElement {
    readonly $type: string;
    /** Attributes moddle kept without knowing them (foreign namespaces, unknown names). */
    readonly $attrs: Readonly<Record<string, unknown>>;
    readonly $parent?: ModdleElement;
    readonly [property: string]: unknown;
    get(name: string): unknown;
    set(name: string, value: unknown): void;
    $instanceOf(type: string): boolean;
  }

  /** One entry of fromXML's `warnings`: the reader skipped or could not resolve something. */
  export interface ModdleWarning {
    readonly message: string;
    /** Set for unknown attributes and unresolved references. */
    readonly element?: ModdleElement;
    readonly property?: string;
    readonly value?: unknown;
    /** Set for unparsable content. */
    readonly error?: Error;
  }

  export interface ModdleParseResult {
    readonly rootElement: ModdleElement;
    readonly elementsById: Readonly<Record<string, ModdleElement>>;
    readonly warnings: readonly ModdleWarning[];
  }

  export interface ModdleWriteOptions {
    readonly format?: boolean;
    readonly preamble?: boolean;
  }

  /** A moddle package descriptor (the JSON format of bpmn-moddle's resources/). */
  export interface ModdlePackage {
    readonly name: string;
    readonly uri: string;
    readonly prefix: string;
    readonly xml?: { readonly tagAlias?: "lowerCase" };
    readonly associations: readonly unknown[];
    readonly types: readonly unknown[];
  }

  export class BpmnModdle {
    constructor(additionalPackages?: Readonly<Record<string, ModdlePackage>>, options?: Readonly<Record<string, unknown>>);
    /** Rejects with an Error that carries `warnings: ModdleWarning[]` when the XML cannot be read. */
    fromXML(xml: string, options?: Readonly<Record<string, unknown>>): Promise<ModdleParseResult>;
    toXML(element: ModdleElement, options?: ModdleWriteOptions): Promise<{ readonly xml: string }>;
    create(type: string, attrs?: Readonly<Record<string, unknown>>): ModdleElement;
  }
}
