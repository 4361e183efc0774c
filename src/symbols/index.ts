// Symbolization: kernel frames and user-space addresses to file:line with inlines.
export { ADDR2LINE, Addr2Line, type Addr2LineOptions } from './addr2line.js';
export type { CodeLocation } from './addr2line-output.js';
export { type CodeSymbol, ElfFile, moduleNameOfPath, SymbolTable } from './elf-file.js';
export { type FilterOptions, type FilterResult, symbolizeLines, symbolizeStream } from './filter.js';
export { DebugFiles, type DebugSearchOptions } from './locate.js';
export {
  type FrameQuery,
  type FrameResolution,
  pickSymbol,
  type ResolvedFrame,
  Symbolizer,
  type SymbolizerOptions,
  type SymbolizerStats,
  tidySourcePath,
  type UnresolvedFrame,
  type UnresolvedReason,
} from './symbolizer.js';
export { annotateLine, type FrameInText, formatResolution, frameSource, framesInLine } from './text.js';
