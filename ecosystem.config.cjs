// pm2 process file for fghv-kiosk (where systemd is not available):
//   npx pm2 start ecosystem.config.cjs && npx pm2 save   (from the repository root, where pm2
//   looks for it by this name)
// Fork mode, one instance: the daemon owns the cameras and must never run twice.
// Log rotation: pm2 does not rotate by itself; install the pm2-logrotate module
// (`pm2 install pm2-logrotate`, then `pm2 set pm2-logrotate:max_size 10M` and
// `pm2 set pm2-logrotate:retain 7`) or rotate ~/.pm2/logs with logrotate(8) using copytruncate.
// pm2 has no sd_notify watchdog: a hung pipeline is not restarted here (systemd does that).
const path = require('node:path');

const root = __dirname;

module.exports = {
  apps: [
    {
      name: 'fghv-kiosk',
      script: path.join(root, 'bin/fghv-kiosk.js'),
      args: process.env.FGHV_CONFIG ? ['run', '--config', process.env.FGHV_CONFIG] : ['run'],
      cwd: root,
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      // A crash loop (e.g. a broken config) backs off instead of spinning.
      exp_backoff_restart_delay: 1000,
      max_restarts: 10,
      min_uptime: '30s',
      // SIGINT first, then SIGKILL after this: longer than supervision.stop_deadline_ms.
      kill_timeout: 15000,
      max_memory_restart: '1500M',
      merge_logs: true,
      time: false,
      env: {
        NODE_ENV: 'production',
        FGHV_LOG__FORMAT: 'json',
        OPENCV4NODEJS_DISABLE_AUTOBUILD: '1',
        // glibc malloc: frame buffers in their own mappings, few arenas (daemon/supervision/malloc-env.ts).
        MALLOC_ARENA_MAX: '2',
        MALLOC_MMAP_THRESHOLD_: '262144',
      },
    },
  ],
};
