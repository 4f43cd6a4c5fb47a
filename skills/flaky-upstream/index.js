export default async function flakyUpstream({ succeedOn = 3 }, ctx) {
  if (ctx.attempt < succeedOn) {
    // Marked retryable: skillbox tries again after a backoff delay.
    throw new ctx.RetryableError(`upstream busy (attempt ${ctx.attempt} of the ${succeedOn} it needs)`);
  }
  return { answeredOnAttempt: ctx.attempt };
}
