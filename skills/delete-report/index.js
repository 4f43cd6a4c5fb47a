export default async function deleteReport({ name }, ctx) {
  const path = `${ctx.env.workspace}/reports/${name}.md`;
  await ctx.fs.delete(path);
  return { deleted: path };
}
