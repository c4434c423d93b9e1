/** A problem with a notifier option, as `validate()` returns it (the core adds file and line). */
export interface OptionProblem {
  path: Array<string | number>;
  message: string;
}

/** Unknown keys are errors: a typo must not be silently ignored (SPEC "ci.yaml"). */
export function unknownOptionProblems(
  options: Record<string, unknown>,
  known: readonly string[],
): OptionProblem[] {
  return Object.keys(options)
    .filter((k) => !known.includes(k))
    .map((k) => ({ path: [k], message: `unknown option "${k}" — known: ${known.join(', ')}` }));
}
