/** TIRGen, THOR's actor-critic data pipeline (docs/tirgen.md). */
export { CRITIC_INVALID_REASONS, CRITIC_PROMPT, criticPrompt, ModelCritic, parseCriticReply, type Critic, type CriticInvalidReason, type CriticOptions, type CriticVerdict, type ModelCriticOptions } from './critic';
export { answerVerified, codeBlocks, codeLines, dollarsPaired, failedFilters, hasBoxedAnswer, hasCodeInThinking, passesCodeQuality, passesPaperCodeRule, passesThorCodeRule, policyTextOf, SAMPLE_FILTERS, usesLibraryOrControlFlow, type FilterInput, type SampleFilter } from './filters';
export { checkResume, DATA_FILE, MESSAGES_FILE, messagesLine, PROGRESS_FILE, progressHeaderLine, progressLine, REPORT_FILE, resumeState, sampleLine, type ProgressHeader, type ResumeState } from './outputs';
export { runTirgen, sameOutput, type QuestionResult, type StepEvent, type TirgenEnv, type TirgenProblem, type TirgenProgress, type TirgenResult, type TirgenRunOptions, type TirgenSample } from './pipeline';
export { addCounts, emptyCounts, FAILURE_REASONS, makeReport, problemsOfFile, reportSummary, SELECTION_DROPS, type FailureReason, type TirgenCounts, type TirgenInput, type TirgenReport } from './report';
export { computationCode, findComputations, RuleCritic, ruleRewrite, type Computation } from './rule-critic';
export { changedSettings, parseTirgenSettings, THOR_TIRGEN, TIRGEN_DEFAULTS, TIRGEN_KEYS, type CodeQualityRule, type TirgenSettings } from './settings';
