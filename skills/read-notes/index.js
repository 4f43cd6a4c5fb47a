// Every file access goes through ctx.fs, which checks it against this skill's grant.
export default async function readNotes({ query, limit = 50 }, ctx) {
  const dir = `${ctx.env.workspace}/notes`;
  const needle = query.toLowerCase();
  const matches = [];
  for (const name of await ctx.fs.list(dir)) {
    if (!name.endsWith(".md")) continue;
    const text = await ctx.fs.readFile(`${dir}/${name}`);
    text.split("\n").forEach((line, i) => {
      if (matches.length < limit && line.toLowerCase().includes(needle)) {
        matches.push({ file: `notes/${name}`, line: i + 1, text: line.trim() });
      }
    });
  }
  ctx.log.info("searched notes", { query, matches: matches.length });
  return { query, matches };
}
