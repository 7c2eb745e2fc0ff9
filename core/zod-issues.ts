import type { z } from 'zod';

/** Every validation issue as `path: message`, the path written like `cameras[0].kind`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const p = issue.path
      .map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? String(seg) : `.${String(seg)}`))
      .join('');
    return `${p || '(root)'}: ${issue.message}`;
  });
}
