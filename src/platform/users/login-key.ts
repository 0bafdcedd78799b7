/**
 * A login's key: what makes two logins one, whatever case and Unicode normal form they are typed
 * in ("Supervisor", "supervisor" and "SUPERVISOR" are one login). Locale-independent lower case
 * of the NFC form, so that every process and both stores agree on it.
 */
export function loginKey(login: string): string {
  return login.normalize("NFC").toLowerCase().normalize("NFC");
}
