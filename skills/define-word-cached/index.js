import { GLOSSARY } from "./glossary.js";

export default async function defineWordCached({ word }) {
  const key = word.toLowerCase();
  const definition = GLOSSARY[key] ?? null;
  return { word: key, definition, source: definition ? "bundled glossary" : "not in the bundled glossary" };
}
