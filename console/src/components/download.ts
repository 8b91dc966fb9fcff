// Hands a document the page fetched (with its bearer) to the browser as a download: an API link cannot carry the
// token, so the page reads the bytes and saves a blob under the document's own name.

/** Saves `blob` as `name`; the object URL is released once the browser has taken it. */
export function saveDocument(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
