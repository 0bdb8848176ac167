// The sidecar injection webhook: pure patch computation (pod-injection.ts), the AdmissionReview
// around it (admission-review.ts), and the HTTPS server the apiserver calls (injection-server.ts).

export { injectProxy, INJECT_LABEL, INJECTED_LABEL, PROXY_ANNOTATIONS, PROXY_CONTAINER_NAME, PROXY_URL_ENV, type InjectionResult, type JsonPatchOperation } from './pod-injection.ts';
export { reviewAdmission, type AdmissionReviewResponse, type ReviewOutcome } from './admission-review.ts';
export { checkInjectionConfig, loadInjectionConfig, InjectionConfigError, type InjectionConfig, type ProxyDefaults } from './injection-config.ts';
export { startInjector, type InjectorServeConfig, type RunningInjector } from './injection-server.ts';
export { INJECTOR_FLAG_OPTIONS, INJECTOR_USAGE, injectorServeConfigOf } from './flags.ts';
