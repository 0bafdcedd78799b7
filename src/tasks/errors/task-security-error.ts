/**
 * A task may not run as its initiator: the user was deactivated or deleted, or the stored
 * initiator failed its integrity check. The task ends dead and does not run.
 */
export class TaskSecurityError extends Error {
  override readonly name = "TaskSecurityError";
}
