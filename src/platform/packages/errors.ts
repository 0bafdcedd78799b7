/**
 * What is wrong with a request to the packages, as opposed to a failure of the store or the code:
 * the message is meant for whoever made the request (the web API shows it as it is).
 */
export class PackageInputError extends Error {
  override readonly name: string = "PackageInputError";
}

/** No package of that name. */
export class PackageNotFoundError extends PackageInputError {
  override readonly name: string = "PackageNotFoundError";

  constructor(readonly packageName: string) {
    super(`no package named ${JSON.stringify(packageName)}`);
  }
}
