export default async function devHealth({ port, path = "/health" }, ctx) {
  const url = `http://127.0.0.1:${port}${path}`;
  const started = Date.now();
  const res = await ctx.fetch(url); // a refused or unreachable server throws; network errors are retried
  const body = await res.text();
  return {
    url,
    status: res.status,
    ok: res.ok,
    ms: Date.now() - started,
    body: body.slice(0, 200),
  };
}
