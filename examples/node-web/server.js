'use strict';
// node-web example: express on port 3000.
const express = require('express');

const app = express();
app.use(express.json());

app.get('/', (req, res) => {
  res.type('html').send(
    '<!doctype html><html><body><h1>node-web</h1>' +
      '<p><a href="/api/items">items</a></p></body></html>'
  );
});

app.get('/api/items', (req, res) => {
  res.json({ items: ['alpha', 'beta', 'gamma'], count: 3 });
});

app.get('/healthz', (req, res) => res.send('ok\n'));

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, '0.0.0.0', () => {
  console.log(`node-web listening on ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
