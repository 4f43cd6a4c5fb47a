export default async function gitLogSummary({ count = 5 }, ctx) {
  const run = await ctx.exec("git", ["log", "--oneline", "--no-decorate", "-n", String(count)], { cwd: ctx.env.workspace });
  if (run.exitCode !== 0) throw new Error(`git log failed: ${run.stderr.trim().split("\n")[0]}`);
  const commits = run.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => ({ hash: line.slice(0, line.indexOf(" ")), subject: line.slice(line.indexOf(" ") + 1) }));
  return { commits };
}
