import { slugify } from "./slug.js";

export default async function writeReport({ title, items }, ctx) {
  const path = `${ctx.env.workspace}/reports/${slugify(title)}.md`;
  const body = `# ${title}\n\n${items.map((i) => `- ${i}`).join("\n")}\n`;
  await ctx.fs.writeFile(path, body);
  ctx.log.info("report written", { path, items: items.length });
  return { path, bytes: body.length };
}
