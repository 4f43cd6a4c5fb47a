export const GLOSSARY = {
  isolate: "An independent instance of the V8 engine, with its own heap and no access to the host.",
  sandbox: "A restricted environment in which untrusted code runs without reaching the rest of the system.",
  capability: "An unforgeable permission to perform one kind of action, checked on every use.",
  backoff: "Waiting longer after each failed attempt before trying again.",
  fallback: "What runs when the main path has failed and its retries are spent.",
};
