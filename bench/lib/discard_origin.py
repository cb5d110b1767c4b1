#!/usr/bin/python3
"""An upload sink for the benchmarks: PUT or POST with a Content-Length or a chunked body is read
in full and thrown away, then answered 200 with the byte count ("<n>\\n"), so a caller can check that
every byte arrived. Anything else gets 404. HTTP/1.1 keep-alive, one thread per connection,
127.0.0.1 only.

usage: discard_origin.py PORT"""
import http.server
import sys

CHUNK = 1 << 20


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    buf = None

    def log_message(self, *args):
        pass

    def _read(self, n, view):
        """Reads and discards exactly n bytes; returns how many arrived before end of stream."""
        got = 0
        while got < n:
            k = self.rfile.readinto(view[:min(CHUNK, n - got)])
            if not k:
                break
            got += k
        return got

    def _discard(self):
        view = memoryview(bytearray(CHUNK))
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            total = 0
            while True:
                line = self.rfile.readline(4096)
                if not line:
                    return None
                size = int(line.split(b';', 1)[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline(4096) not in (b'\r\n', b'\n', b''):
                        pass  # trailers
                    return total
                if self._read(size, view) != size:
                    return None
                total += size
                self.rfile.readline(4096)  # the CRLF after the chunk
        length = int(self.headers.get('Content-Length', '0'))
        got = self._read(length, view)
        return got if got == length else None

    def _answer(self, code, body):
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        total = self._discard()
        if total is None:
            self.close_connection = True
            return
        self._answer(200, b'%d\n' % total)

    do_POST = do_PUT

    def do_GET(self):
        self._answer(404, b'upload sink: PUT or POST only\n')


if __name__ == '__main__':
    server = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Sink)
    server.daemon_threads = True
    server.serve_forever()
