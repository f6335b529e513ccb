// The snippet lives in the URL fragment (`#lang=python&code=<base64url utf-8>`):
// fragments never reach the server, and a copied link reproduces the snippet.

function toBase64Url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  // Chunked so a large snippet does not overflow the argument list.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(encoded) {
  const base64 = encoded.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

export function encodeFragment({ language, code }) {
  const params = new URLSearchParams({ lang: language, code: toBase64Url(code) });
  return `#${params}`;
}

/**
 * `{language, code, damaged}` from a fragment; `language` or `code` is undefined
 * when absent or unreadable, and `damaged` says a snippet link was there but
 * could not be read (cut short, or edited by hand), so the page can say so.
 */
export function decodeFragment(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const language = params.get('lang') || undefined;
  let code;
  let damaged = false;
  const raw = params.get('code');
  if (raw !== null) {
    try {
      code = fromBase64Url(raw);
    } catch {
      damaged = true; // a mangled link: keep whatever the page would show otherwise
    }
  } else if (params.has('lang')) {
    damaged = true; // a snippet link always carries its code
  }
  return { language, code, damaged };
}

export function shareUrl(snippet) {
  return `${location.origin}${location.pathname}${location.search}${encodeFragment(snippet)}`;
}

/** The playground of this server opened on `snippet` (from a page other than the playground). */
export function playgroundUrl(snippet) {
  return `${location.origin}/${encodeFragment(snippet)}`;
}

/** Copy to the clipboard; false when the browser refuses (no permission, insecure origin). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
