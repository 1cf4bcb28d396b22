(import 'usage.libsonnet') +
(import 'security.libsonnet') +
(import 'health.libsonnet') +
(import 'items.libsonnet')
