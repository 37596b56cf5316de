// `torch-attn <args>` from the TypeScript sources, as a child process (for the serve test).
import { main } from '../../lib/cli';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
