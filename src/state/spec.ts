/** Whether a `state` option names a PostgreSQL database rather than a folder. Kept free of imports, so option parsing does not load the stores. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}
