/** "Q3 Review!" -> "q3-review": safe as a file name, never a path. */
export function slugify(title) {
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60);
  return slug || "report";
}
