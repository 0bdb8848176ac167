// How the controller decides who a proxy is: TokenReview of its projected service-account token.

export { PROXY_TOKEN_AUDIENCE, tokenReviewAuthenticator, type TokenReviewer, type TokenReviewResult } from './token-review-authenticator.ts';
