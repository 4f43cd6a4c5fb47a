export default async function defineWord({ word }, ctx) {
  ctx.log.info("asking the live dictionary", { word });
  // The upstream never answers: this promise never settles. The host's deadline ends the attempt.
  await new Promise(() => {});
  return { word, definition: "unreachable" };
}
