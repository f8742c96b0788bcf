// Quoting keys and tensor names from a file for error messages: JSON-escaped and cut to a readable length.

export function quote(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}
