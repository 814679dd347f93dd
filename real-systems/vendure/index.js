// Vendure 3.7 for erpsync: Admin GraphQL on PostgreSQL, bearer tokens, one custom field.
//
// Settings come from the environment (real-systems/realsys.py sets them):
//   VENDURE_PORT, VENDURE_DB_HOST, VENDURE_DB_PORT, VENDURE_DB_USER, VENDURE_DB_PASSWORD, VENDURE_DB_NAME,
//   VENDURE_SUPERADMIN, VENDURE_SUPERADMIN_PASSWORD, VENDURE_SYNCHRONIZE=1 (create the schema: init only).
// Order.externalId is a unique custom field: the key of an order created through the API (a
// marketplace or POS order), so that a retried create cannot make a second order.
const {
  bootstrap,
  bootstrapWorker,
  DefaultJobQueuePlugin,
  DefaultSearchPlugin,
  dummyPaymentHandler,
  LanguageCode,
} = require('@vendure/core');

const env = process.env;
const config = {
  apiOptions: {
    hostname: '127.0.0.1',
    port: Number(env.VENDURE_PORT || 3000),
    adminApiPath: 'admin-api',
    shopApiPath: 'shop-api',
  },
  authOptions: {
    tokenMethod: ['bearer', 'cookie'],
    requireVerification: false,
    superadminCredentials: {
      identifier: env.VENDURE_SUPERADMIN || 'superadmin',
      password: env.VENDURE_SUPERADMIN_PASSWORD || 'superadmin',
    },
    cookieOptions: { secret: env.VENDURE_COOKIE_SECRET || 'erpsync-e2e' },
  },
  dbConnectionOptions: {
    type: 'postgres',
    host: env.VENDURE_DB_HOST || '127.0.0.1',
    port: Number(env.VENDURE_DB_PORT || 5432),
    username: env.VENDURE_DB_USER || 'postgres',
    password: env.VENDURE_DB_PASSWORD || '',
    database: env.VENDURE_DB_NAME || 'erpsync_vendure',
    synchronize: env.VENDURE_SYNCHRONIZE === '1',
    logging: false,
  },
  paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
  customFields: {
    Order: [
      {
        name: 'externalId',
        type: 'string',
        unique: true,
        nullable: true,
        label: [{ languageCode: LanguageCode.en, value: 'External id' }],
      },
    ],
  },
  plugins: [DefaultJobQueuePlugin.init({ pollInterval: 500 }), DefaultSearchPlugin.init({})],
};

async function main() {
  const app = await bootstrap(config);
  // the job queue (search index, e-mails) runs in this process: one process to start and stop
  const worker = await bootstrapWorker(config);
  await worker.startJobQueue();
  const stop = async () => {
    await worker.app.close();
    await app.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
