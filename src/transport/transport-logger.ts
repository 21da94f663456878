// The logger a transport reports to: a pino logger fits it; the default writes warnings and errors to stderr.

export interface TransportLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export const stderrTransportLogger: TransportLogger = {
  info: () => {},
  warn: (details, message) => console.warn(`[transport] ${message}`, details),
  error: (details, message) => console.error(`[transport] ${message}`, details),
};
